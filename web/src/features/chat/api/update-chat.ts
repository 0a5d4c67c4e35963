import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { chatsQueryKey } from "./get-chats";
import { historyQueryKey } from "./get-history";
import type { Chat, ChatUpdate } from "./types";

/** PATCH /chat/chats/{id}: rename, new participants (the first is the default) or a new mode. */
export function updateChat({ id, ...body }: { id: string } & ChatUpdate): Promise<Chat> {
  return apiRequest<Chat>(`/chat/chats/${encodeURIComponent(id)}`, { method: "PATCH", body: body satisfies ChatUpdate });
}

function useUpdateChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: updateChat,
    onSuccess: (_chat, { id }) => {
      void queryClient.invalidateQueries({ queryKey: chatsQueryKey });
      void queryClient.invalidateQueries({ queryKey: historyQueryKey(id) });
    },
  });
}

/** Rename a chat. */
export function useRenameChat() {
  return useUpdateChat();
}

/** Change a chat's participants or mode (403 `feature-not-in-plan` when the plan lacks multi_agent). */
export function useUpdateParticipants() {
  return useUpdateChat();
}
