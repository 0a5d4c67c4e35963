import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type TokenAnswer, startSession } from "@/lib/auth-session";

export interface LoginInput {
  email: string;
  password: string;
}

/** POST /auth/login: the refresh token comes back as an httpOnly cookie; only the access token is kept. */
export interface AuthAnswer extends TokenAnswer {
  user?: { id: string; email: string; tenant_id?: string; role?: string };
  token_type: "bearer";
}

export function login(input: LoginInput): Promise<AuthAnswer> {
  return apiRequest<AuthAnswer>("/auth/login", { method: "POST", body: input, anonymous: true });
}

export function useLogin() {
  return useMutation({
    mutationFn: login,
    onSuccess: (answer) => startSession(answer),
  });
}
