import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { ApiError } from "@/lib/api-error";
import type { components } from "@/lib/api-schema/auth";

export type TenantSso = components["schemas"]["TenantProviderRead"];
export type TenantSsoInput = components["schemas"]["TenantProviderWrite"];

const KEY = ["auth", "tenant-sso"] as const;

/** GET /auth/sso/tenant (owner): null while the organisation has no provider. */
export async function getTenantSso(): Promise<TenantSso | null> {
  try {
    return await apiRequest<TenantSso>("/auth/sso/tenant");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

export function useTenantSso(enabled: boolean) {
  return useQuery({ queryKey: KEY, queryFn: getTenantSso, enabled });
}

/** PUT /auth/sso/tenant: the client secret is write-only (omit it to keep the stored one). */
export function useSaveTenantSso() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: TenantSsoInput) => apiRequest<TenantSso>("/auth/sso/tenant", { method: "PUT", body: input }),
    onSuccess: (saved) => queryClient.setQueryData(KEY, saved),
  });
}

/** DELETE /auth/sso/tenant: the domains are released and enforcement ends. */
export function useRemoveTenantSso() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => apiRequest<undefined>("/auth/sso/tenant", { method: "DELETE" }),
    onSuccess: () => queryClient.setQueryData(KEY, null),
  });
}
