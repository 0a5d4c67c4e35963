import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";
import { apiKeysQueryKey } from "./get-api-keys";

export type ApiKeyCreate = components["schemas"]["ApiKeyCreate"];
export type ApiKeyCreated = components["schemas"]["ApiKeyCreated"];

/** POST /auth/api-keys: the answer holds the key, shown this once. */
export function createApiKey(body: ApiKeyCreate): Promise<ApiKeyCreated> {
  return apiRequest<ApiKeyCreated>("/auth/api-keys", { method: "POST", body });
}

export function useCreateApiKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: createApiKey,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: apiKeysQueryKey }),
  });
}
