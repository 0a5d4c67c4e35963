import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { SearchPage } from "./types";

/** The server's limit on a query's length (GET /chat/search answers 422 beyond). */
export const SEARCH_MAX_CHARS = 200;

/** GET /chat/search: my messages matching `q`, best first. */
export function searchMessages(q: string, signal?: AbortSignal): Promise<SearchPage> {
  return apiRequest<SearchPage>("/chat/search", { query: { q, limit: 20 }, signal });
}

export function useSearchMessages(q: string) {
  const query = q.trim();
  return useQuery({
    queryKey: ["chat", "search", query],
    queryFn: ({ signal }) => searchMessages(query, signal),
    enabled: query.length > 0,
    // The previous results stay while the next ones load: the list does not flash empty per key.
    placeholderData: keepPreviousData,
    staleTime: 10_000,
  });
}
