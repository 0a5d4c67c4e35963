import { apiResponse } from "@/lib/api-client";
import type { SendRequest } from "./types";

export interface SendInput {
  content: string;
  chatId?: string;
  agentId?: string;
  /** Answer after this message (the end of the branch on screen) instead of the newest leaf. */
  parentMessageId?: string;
  /** The same key twice stores one message (a retried send after a network error). */
  idempotencyKey: string;
  signal?: AbortSignal;
}

/**
 * POST /chat/send with `Accept: text/event-stream`: the reply streams in the same response
 * (message.created, message.delta, message.completed | message.failed).
 */
export function sendMessage({ content, chatId, agentId, parentMessageId, idempotencyKey, signal }: SendInput): Promise<Response> {
  const body: SendRequest = chatId ? { content, chat_id: chatId, parent_message_id: parentMessageId } : { content, agent_id: agentId };
  return apiResponse("/chat/send", { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey }, signal }, "text/event-stream");
}
