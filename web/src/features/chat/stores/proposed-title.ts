/**
 * A title the agent proposes for a new chat (the `propose_titles` preference). It is asked once
 * the first reply is done, so the page follows the chat a little longer for its `chat.updated`
 * event and then shows the new name in the sidebar and the header.
 */
import { queryClient } from "@/lib/query-client";
import { readSseEvents } from "@/lib/sse";
import { followChat } from "../api/follow-chat";
import { chatsQueryKey } from "../api/get-chats";
import { historyQueryKey } from "../api/get-history";

export const CHAT_UPDATED = "chat.updated";
// 20 s: an agent that has not named the chat by then keeps the page from waiting any longer.
const TITLE_WAIT_MS = 20_000;

/** The chat changed (a new title): show it wherever the chat is listed or open. */
export function onChatUpdated(chatId: string): void {
  void queryClient.invalidateQueries({ queryKey: chatsQueryKey });
  void queryClient.invalidateQueries({ queryKey: historyQueryKey(chatId) });
}

/** Follow the chat until its proposed title arrives (or a while has passed). */
export async function awaitProposedTitle(chatId: string, lastEventId: string | null): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TITLE_WAIT_MS);
  try {
    const response = await followChat(chatId, lastEventId, controller.signal);
    // A title that landed before this stream subscribed is read back instead.
    onChatUpdated(chatId);
    if (!response.body) return;
    for await (const event of readSseEvents(response.body)) {
      if (event.event === CHAT_UPDATED) {
        onChatUpdated(chatId);
        return;
      }
    }
  } catch {
    // Aborted or dropped: the title shows at the next look at the chat list.
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
