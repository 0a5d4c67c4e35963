import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type DocumentList, documentsQueryKey, isSettled } from "./types";

/** GET /knowledge/collections/{id}/documents: documents with their indexing status. */
export function getDocuments(collectionId: string): Promise<DocumentList> {
  return apiRequest<DocumentList>(`/knowledge/collections/${encodeURIComponent(collectionId)}/documents`, { query: { limit: 200 } });
}

/** The documents, polled every second while any is still being indexed. */
export function useDocuments(collectionId: string) {
  return useQuery({
    queryKey: documentsQueryKey(collectionId),
    queryFn: () => getDocuments(collectionId),
    refetchInterval: (query) => (query.state.data?.items.some((d) => !isSettled(d)) ? 1000 : false),
  });
}
