import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { chatsQueryKey } from "./get-chats";
import { historyQueryKey } from "./get-history";
import type { Chat } from "./types";

/** PATCH /chat/chats/{id} {title}: rename. */
export function renameChat({ id, title }: { id: string; title: string }): Promise<Chat> {
  return apiRequest<Chat>(`/chat/chats/${encodeURIComponent(id)}`, { method: "PATCH", body: { title } });
}

export function useRenameChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: renameChat,
    onSuccess: (_chat, { id }) => {
      void queryClient.invalidateQueries({ queryKey: chatsQueryKey });
      void queryClient.invalidateQueries({ queryKey: historyQueryKey(id) });
    },
  });
}
