import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";

export type Account = components["schemas"]["MeRead"];
export type PasswordInput = components["schemas"]["PasswordSet"];

const KEY = ["auth", "me"] as const;

/** GET /auth/me: the account with its linked identities and whether it has a password. */
export function useAccount() {
  return useQuery({ queryKey: KEY, queryFn: () => apiRequest<Account>("/auth/me") });
}

/** PUT /auth/me/password: add a password, or change it with the current one. */
export function useSetPassword() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: PasswordInput) => apiRequest<undefined>("/auth/me/password", { method: "PUT", body: input }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: KEY }),
  });
}

/** DELETE /auth/me/password: only while a linked identity remains a way in. */
export function useRemovePassword() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => apiRequest<undefined>("/auth/me/password", { method: "DELETE" }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: KEY }),
  });
}
