import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { collectionsQueryKey, documentsQueryKey } from "./types";

/** DELETE /knowledge/documents/{id}: the document and its vectors. */
export function deleteDocument(id: string): Promise<undefined> {
  return apiRequest<undefined>(`/knowledge/documents/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function useDeleteDocument(collectionId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: deleteDocument,
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: documentsQueryKey(collectionId) });
      void queryClient.invalidateQueries({ queryKey: collectionsQueryKey });
    },
  });
}
