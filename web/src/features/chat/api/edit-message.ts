import { apiResponse } from "@/lib/api-client";
import type { MessageEdit } from "./types";

/**
 * POST /chat/messages/{id}/edit with `Accept: text/event-stream`: the new wording is stored beside
 * the user's message (same parent) and its reply streams in the response, as a send's does.
 */
export function editMessage(messageId: string, idempotencyKey: string, content: string): Promise<Response> {
  const body: MessageEdit = { content };
  return apiResponse(`/chat/messages/${encodeURIComponent(messageId)}/edit`, { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey } }, "text/event-stream");
}
