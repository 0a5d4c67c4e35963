import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { chatsQueryKey } from "./get-chats";
import { historyQueryKey } from "./get-history";
import type { Chat, ChatUpdate } from "./types";

/** PATCH /chat/chats/{id} {title}: rename. */
export function renameChat({ id, title }: { id: string } & ChatUpdate): Promise<Chat> {
  const body: ChatUpdate = { title };
  return apiRequest<Chat>(`/chat/chats/${encodeURIComponent(id)}`, { method: "PATCH", body });
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
