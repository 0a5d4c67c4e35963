import { apiResponse } from "@/lib/api-client";

/** GET /chat/stream/{chat_id}: follow a chat's replies; Last-Event-ID resumes where we left off. */
export function followChat(chatId: string, lastEventId: string | null, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = lastEventId ? { "Last-Event-ID": lastEventId } : {};
  return apiResponse(`/chat/stream/${encodeURIComponent(chatId)}`, { headers, signal }, "text/event-stream");
}
