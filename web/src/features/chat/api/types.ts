/** Chat API shapes, generated from the chat service's OpenAPI (`make api-types`). */
import type { components } from "@/lib/api-schema/chat";

type Schemas = components["schemas"];

export type Chat = Schemas["ChatRead"];
export type ChatPage = Schemas["ChatPage"];
export type Message = Schemas["MessageRead"];
export type MessageStatus = Message["status"];
export type HistoryPage = Schemas["HistoryPage"];
/** A message of the branch on screen, with the ids of its alternatives (`sibling_ids`). */
export type BranchMessage = Schemas["BranchMessage"];
export type Regeneration = Schemas["Regeneration"];
export type MessageEdit = Schemas["MessageEdit"];
export type ChatUpdate = Schemas["ChatUpdate"];
export type SendRequest = Schemas["ChatSend"];
/** What POST /chat/send answers when the client does not ask for a stream. */
export type SendResult = Schemas["SendResult"];

/**
 * `message.delta` of the chat streams. The OpenAPI document describes the streams only as
 * `text/event-stream`, so this payload is written by hand.
 */
export interface MessageDelta {
  message_id?: string;
  content?: string;
  offset?: number;
}

export function isInFlight(message: Pick<Message, "status">): boolean {
  return message.status === "pending" || message.status === "streaming";
}

export type SearchHit = Schemas["SearchHit"];
export type SearchPage = Schemas["SearchPage"];
