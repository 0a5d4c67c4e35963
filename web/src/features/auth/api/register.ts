import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";
import { startSession } from "@/lib/auth-session";
import type { AuthAnswer } from "./login";

export type RegisterInput = components["schemas"]["RegisterRequest"];

/** POST /auth/register: a new tenant on Basic (owner), or join one with an invite code (member). */
export function register(input: RegisterInput): Promise<AuthAnswer> {
  const body = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined && value !== ""));
  return apiRequest<AuthAnswer>("/auth/register", { method: "POST", body, anonymous: true });
}

export function useRegister() {
  return useMutation({
    mutationFn: register,
    onSuccess: (answer) => startSession(answer),
  });
}
