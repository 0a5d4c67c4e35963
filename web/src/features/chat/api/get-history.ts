import { useInfiniteQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { HistoryPage } from "./types";

// 30 messages fill a tall screen; older pages load as the reader scrolls up.
const PAGE_SIZE = 30;

export const historyQueryKey = (chatId: string) => ["chat", "history", chatId] as const;

/** GET /chat/history/{chat_id}?limit=&before=: a page, oldest first; next_cursor goes further back. */
export function getHistory(chatId: string, before: string | null): Promise<HistoryPage> {
  return apiRequest<HistoryPage>(`/chat/history/${encodeURIComponent(chatId)}`, { query: { limit: PAGE_SIZE, before } });
}

export function useHistory(chatId: string | undefined) {
  return useInfiniteQuery({
    queryKey: historyQueryKey(chatId ?? ""),
    queryFn: ({ pageParam }) => getHistory(chatId ?? "", pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (page) => page.next_cursor ?? undefined,
    enabled: Boolean(chatId),
    staleTime: 0,
  });
}
