import { keepPreviousData, useInfiniteQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { HistoryPage } from "./types";

// 30 messages fill a tall screen; older pages load as the reader scrolls up.
const PAGE_SIZE = 30;

/** Every branch of a chat shares this prefix: invalidating it refreshes whichever is shown. */
export const historyQueryKey = (chatId: string) => ["chat", "history", chatId] as const;
const branchQueryKey = (chatId: string, leaf: string | null) => [...historyQueryKey(chatId), leaf ?? "newest"] as const;

/**
 * GET /chat/history/{chat_id}?limit=&before=&leaf=: a page of one branch, oldest first;
 * next_cursor goes further back. `leaf` picks the branch (default: the newest leaf's).
 */
export function getHistory(chatId: string, before: string | null, leaf: string | null = null): Promise<HistoryPage> {
  return apiRequest<HistoryPage>(`/chat/history/${encodeURIComponent(chatId)}`, { query: { limit: PAGE_SIZE, before, leaf: before ? null : leaf } });
}

export function useHistory(chatId: string | undefined, leaf: string | null = null) {
  return useInfiniteQuery({
    queryKey: branchQueryKey(chatId ?? "", leaf),
    queryFn: ({ pageParam }) => getHistory(chatId ?? "", pageParam, leaf),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
    enabled: Boolean(chatId),
    staleTime: 0,
    // Switching branches keeps the conversation on screen until the other branch has loaded.
    placeholderData: keepPreviousData,
  });
}
