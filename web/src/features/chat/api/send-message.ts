import { apiResponse } from "@/lib/api-client";
import type { SendRequest } from "./types";

export interface SendInput {
  content: string;
  chatId?: string;
  agentId?: string;
  /** A new chat with several agents (the first is the default) answering in `mode`. */
  agentIds?: string[];
  mode?: SendRequest["mode"];
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
export function sendMessage({ content, chatId, agentId, agentIds, mode, parentMessageId, idempotencyKey, signal }: SendInput): Promise<Response> {
  const body: SendRequest = chatId
    ? { content, chat_id: chatId, parent_message_id: parentMessageId }
    : agentIds && (agentIds.length > 1 || (mode && mode !== "direct"))
      ? { content, agent_ids: agentIds, mode: mode ?? "direct" }
      : { content, agent_id: agentId ?? agentIds?.[0] };
  return apiResponse("/chat/send", { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey }, signal }, "text/event-stream");
}
