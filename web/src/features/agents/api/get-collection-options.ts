import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/knowledge";

export type CollectionOption = components["schemas"]["CollectionRead"];

/** GET /knowledge/collections: what an agent may answer from (403 when the plan lacks knowledge). */
export function getCollectionOptions(): Promise<components["schemas"]["CollectionList"]> {
  return apiRequest("/knowledge/collections", { query: { limit: 200 } });
}

export function useCollectionOptions() {
  return useQuery({ queryKey: ["knowledge", "collections"], queryFn: getCollectionOptions, retry: false });
}
