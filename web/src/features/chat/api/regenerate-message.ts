import { apiResponse } from "@/lib/api-client";
import type { Regeneration } from "./types";

/**
 * POST /chat/messages/{id}/regenerate with `Accept: text/event-stream`: a new reply beside an
 * agent's (same parent) streams in the response, as a send's does.
 */
export function regenerateMessage(messageId: string, idempotencyKey: string, body: Regeneration = {}): Promise<Response> {
  return apiResponse(`/chat/messages/${encodeURIComponent(messageId)}/regenerate`, { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey } }, "text/event-stream");
}
