import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { ChatPage } from "./types";

export const chatsQueryKey = ["chat", "chats"] as const;

/** GET /chat/chats: my chats, newest first. */
export function getChats(): Promise<ChatPage> {
  return apiRequest<ChatPage>("/chat/chats", { query: { limit: 50 } });
}

export function useChats() {
  return useQuery({ queryKey: chatsQueryKey, queryFn: getChats });
}
