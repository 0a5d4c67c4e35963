import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type CollectionList, collectionsQueryKey } from "./types";

/** GET /knowledge/collections: the caller's and the tenant's shared collections (403 without the plan feature). */
export function getCollections(): Promise<CollectionList> {
  return apiRequest<CollectionList>("/knowledge/collections", { query: { limit: 200 } });
}

export function useCollections() {
  return useQuery({ queryKey: collectionsQueryKey, queryFn: getCollections, retry: false });
}
