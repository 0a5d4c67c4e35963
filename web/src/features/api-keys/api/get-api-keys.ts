import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";

export type ApiKey = components["schemas"]["ApiKeyRead"];
export type ApiKeyPage = components["schemas"]["ApiKeyPage"];
export type ApiKeyScope = "mine" | "tenant";

export const apiKeysQueryKey = ["auth", "api-keys"] as const;

/** GET /auth/api-keys: the caller's keys, or with `tenant` (owners/admins) the organisation's. */
export function getApiKeys(scope: ApiKeyScope): Promise<ApiKeyPage> {
  return apiRequest<ApiKeyPage>("/auth/api-keys", { query: { scope, limit: 200 } });
}

export function useApiKeys(scope: ApiKeyScope) {
  return useQuery({ queryKey: [...apiKeysQueryKey, scope], queryFn: () => getApiKeys(scope) });
}
