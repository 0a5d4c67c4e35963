import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { Message } from "./types";

/** POST /chat/messages/{id}/stop: what streamed so far is kept, marked `stopped`. */
export function stopMessage(messageId: string): Promise<Message> {
  return apiRequest<Message>(`/chat/messages/${encodeURIComponent(messageId)}/stop`, { method: "POST" });
}

export function useStopMessage() {
  return useMutation({ mutationFn: stopMessage });
}
