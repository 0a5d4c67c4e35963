import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { collectionsQueryKey } from "./types";

/** DELETE /knowledge/collections/{id}: its documents and vectors go too. */
export function deleteCollection(id: string): Promise<undefined> {
  return apiRequest<undefined>(`/knowledge/collections/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function useDeleteCollection() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: deleteCollection,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: collectionsQueryKey }),
  });
}
