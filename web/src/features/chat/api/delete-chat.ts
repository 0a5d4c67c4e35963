import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { chatsQueryKey } from "./get-chats";

/** DELETE /chat/chats/{id}. */
export function deleteChat(id: string): Promise<undefined> {
  return apiRequest<undefined>(`/chat/chats/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function useDeleteChat() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: deleteChat,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: chatsQueryKey }),
  });
}
