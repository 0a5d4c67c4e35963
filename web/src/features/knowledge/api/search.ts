import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { SearchResult } from "./types";

/** POST /knowledge/search: the best chunks of these collections, best first. */
export function searchKnowledge(input: { query: string; collection_ids: string[]; top_k?: number }): Promise<SearchResult> {
  return apiRequest<SearchResult>("/knowledge/search", { method: "POST", body: input });
}

export function useSearchKnowledge() {
  return useMutation({ mutationFn: searchKnowledge });
}
