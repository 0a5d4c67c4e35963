import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";
import { startSession } from "@/lib/auth-session";

export type LoginInput = components["schemas"]["LoginRequest"];

/** POST /auth/login: the refresh token comes back as an httpOnly cookie; only the access token is kept. */
export type AuthAnswer = components["schemas"]["AuthenticatedSession"];

export function login(input: LoginInput): Promise<AuthAnswer> {
  return apiRequest<AuthAnswer>("/auth/login", { method: "POST", body: input, anonymous: true });
}

export function useLogin() {
  return useMutation({
    mutationFn: login,
    onSuccess: (answer) => startSession(answer),
  });
}
