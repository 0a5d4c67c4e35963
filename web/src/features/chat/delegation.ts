/**
 * Orchestrated turns: the answers the orchestrator's delegates gave are messages whose parent is
 * the orchestrator's reply (marked `delegated`). They are shown nested under that reply.
 */
import type { Message } from "./api/types";

// `parent_id` and `delegated` come with branches and orchestration; read defensively so the
// page works against a chat service that does not send them yet.
type Threaded = Message & { parent_id?: string | null; delegated?: boolean };

function isDelegatedAnswer(message: Threaded, byId: Map<string, Message>): boolean {
  if (message.sender !== "agent" || !message.parent_id) return false;
  const parent = byId.get(message.parent_id);
  if (!parent || parent.sender !== "agent") return false;
  return message.delegated ?? true;
}

/** The conversation's own messages, and each orchestrator reply's delegated answers (by its id, in order). */
export function splitDelegated(messages: Message[]): { conversation: Message[]; delegated: Map<string, Message[]> } {
  const byId = new Map(messages.map((message) => [message.id, message]));
  const conversation: Message[] = [];
  const delegated = new Map<string, Message[]>();
  for (const message of messages as Threaded[]) {
    if (isDelegatedAnswer(message, byId) && message.parent_id) {
      delegated.set(message.parent_id, [...(delegated.get(message.parent_id) ?? []), message]);
    } else {
      conversation.push(message);
    }
  }
  return { conversation, delegated };
}
