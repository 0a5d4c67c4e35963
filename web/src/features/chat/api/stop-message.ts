import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

/** POST /chat/messages/{id}/stop: what streamed so far is kept, marked `stopped`. */
export function stopMessage(messageId: string): Promise<unknown> {
  return apiRequest(`/chat/messages/${encodeURIComponent(messageId)}/stop`, { method: "POST" });
}

export function useStopMessage() {
  return useMutation({ mutationFn: stopMessage });
}
