import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { apiKeysQueryKey } from "./get-api-keys";

/** DELETE /auth/api-keys/{id}: the key stops working at once. */
export function revokeApiKey(id: string): Promise<undefined> {
  return apiRequest<undefined>(`/auth/api-keys/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function useRevokeApiKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: revokeApiKey,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: apiKeysQueryKey }),
  });
}
