/**
 * Live replies, outside React so a stream survives navigation (a new chat gets its id mid-stream)
 * and several views can watch the same chat. Components subscribe with useLiveChat().
 */
import { randomId } from "@/lib/random-id";
import { useSyncExternalStore } from "react";
import { ApiError } from "@/lib/api-error";
import { queryClient } from "@/lib/query-client";
import { parseEventData, readSseEvents } from "@/lib/sse";
import { followChat } from "../api/follow-chat";
import { chatsQueryKey } from "../api/get-chats";
import { historyQueryKey } from "../api/get-history";
import { type SendInput, sendMessage } from "../api/send-message";
import { type Message, type MessageDelta, type SendResult, isInFlight } from "../api/types";
import { CHAT_UPDATED, awaitProposedTitle, onChatUpdated } from "./proposed-title";

export type Connection = "idle" | "sending" | "streaming" | "reconnecting" | "offline";

export interface LiveChat {
  messages: Message[];
  connection: Connection;
  error: unknown;
  lastEventId: string | null;
}

const EMPTY: LiveChat = { messages: [], connection: "idle", error: null, lastEventId: null };
// Back-off between reconnects: 1 s, 2 s, 4 s … capped at 10 s.
const MAX_BACKOFF_MS = 10_000;
const MAX_RECONNECTS = 30;

const chats = new Map<string, LiveChat>();
const listeners = new Set<() => void>();
const following = new Map<string, AbortController>();

function notify(): void {
  for (const listener of listeners) listener();
}

function get(key: string): LiveChat {
  return chats.get(key) ?? EMPTY;
}

function update(key: string, change: (chat: LiveChat) => Partial<LiveChat>): void {
  const current = get(key);
  chats.set(key, { ...current, ...change(current) });
  notify();
}

function upsert(messages: Message[], message: Message): Message[] {
  const index = messages.findIndex((m) => m.id === message.id);
  if (index === -1) return [...messages, message];
  const next = messages.slice();
  next[index] = { ...messages[index], ...message };
  return next;
}

function asMessage(data: unknown): Message | null {
  if (!data || typeof data !== "object") return null;
  const candidate = ("message" in data ? (data as { message: unknown }).message : data) as Partial<Message>;
  return candidate && typeof candidate.id === "string" && typeof candidate.sender === "string" ? (candidate as Message) : null;
}

function anyInFlight(key: string): boolean {
  return get(key).messages.some((m) => m.sender === "agent" && isInFlight(m));
}

function onReplyFinished(chatId: string): void {
  void queryClient.invalidateQueries({ queryKey: historyQueryKey(chatId) });
  void queryClient.invalidateQueries({ queryKey: chatsQueryKey });
  // Usage meters (owned by the tenants feature) changed too.
  void queryClient.invalidateQueries({ queryKey: ["tenants", "plan"] });
}

/**
 * Apply one stream to the chat stored under `key`. Returns the chat id once known. `untilIdle`
 * stops reading when no reply is in flight any more (a follow stream never ends by itself).
 */
async function consume(
  body: ReadableStream<Uint8Array>,
  key: string,
  onChatId: (chatId: string) => void,
  untilIdle: boolean,
  onCreated?: (message: Message) => void,
): Promise<string> {
  let currentKey = key;
  for await (const event of readSseEvents(body)) {
    const data = parseEventData(event);
    update(currentKey, () => ({ lastEventId: event.id, connection: "streaming", error: null }));
    if (event.event === "message.created" || event.event === "message.completed" || event.event === "message.failed") {
      const message = asMessage(data);
      if (!message) continue;
      if (message.chat_id && currentKey !== message.chat_id) {
        // A new chat just got its id: move what we have under it and tell the page.
        const moved = get(currentKey);
        chats.delete(currentKey);
        chats.set(message.chat_id, { ...moved, ...get(message.chat_id), messages: moved.messages });
        currentKey = message.chat_id;
        onChatId(message.chat_id);
        // The sidebar lists the new chat right away, not only once the reply is done.
        void queryClient.invalidateQueries({ queryKey: chatsQueryKey });
      }
      update(currentKey, (chat) => {
        let messages = chat.messages;
        if (message.sender === "user") {
          // Replace the optimistic copy shown while sending.
          messages = messages.filter((m) => !(m.id.startsWith("local-") && m.sender === "user"));
        }
        // message.created for a reply carries empty content; keep what deltas already brought.
        const existing = messages.find((m) => m.id === message.id);
        if (event.event === "message.created" && existing) {
          return { messages: upsert(messages, { ...message, content: existing.content, status: existing.status }) };
        }
        return { messages: upsert(messages, message) };
      });
      if (event.event === "message.created") onCreated?.(message);
      if (event.event !== "message.created" && message.sender === "agent") onReplyFinished(currentKey);
    } else if (event.event === CHAT_UPDATED) {
      onChatUpdated(currentKey);
    } else if (event.event === "message.delta" && data && typeof data === "object") {
      const delta = data as MessageDelta;
      if (!delta.message_id || typeof delta.content !== "string") continue;
      update(currentKey, (chat) => ({
        messages: chat.messages.map((m) => {
          if (m.id !== delta.message_id) return m;
          // With an offset the delta is placed exactly, so a replayed piece never doubles text.
          const base = typeof delta.offset === "number" ? m.content.slice(0, delta.offset) : m.content;
          return { ...m, content: base + delta.content, status: "streaming" };
        }),
      }));
    }
    if (untilIdle && !anyInFlight(currentKey)) break;
  }
  return currentKey;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function waitUntilOnline(signal: AbortSignal): Promise<void> {
  if (navigator.onLine) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      window.removeEventListener("online", done);
      resolve();
    };
    window.addEventListener("online", done);
    signal.addEventListener("abort", done);
  });
}

/**
 * Follow a chat's stream while a reply is in flight, reconnecting with the last event id after a
 * network drop. One follower per chat.
 */
export function followLiveChat(chatId: string): void {
  if (following.has(chatId)) return;
  const controller = new AbortController();
  following.set(chatId, controller);
  void (async () => {
    let attempt = 0;
    try {
      while (!controller.signal.aborted && attempt < MAX_RECONNECTS) {
        if (!navigator.onLine) {
          update(chatId, () => ({ connection: "offline" }));
          await waitUntilOnline(controller.signal);
        }
        try {
          const response = await followChat(chatId, get(chatId).lastEventId, controller.signal);
          if (!response.body) break;
          attempt = 0;
          update(chatId, () => ({ connection: "streaming" }));
          await consume(response.body, chatId, () => undefined, true);
          if (!anyInFlight(chatId)) break;
        } catch (error) {
          if (controller.signal.aborted) break;
          // 4xx (not found, forbidden) will not heal by retrying.
          if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
            update(chatId, () => ({ error, connection: "idle" }));
            break;
          }
        }
        if (!anyInFlight(chatId) || controller.signal.aborted) break;
        attempt += 1;
        update(chatId, () => ({ connection: navigator.onLine ? "reconnecting" : "offline" }));
        await sleep(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1)), controller.signal);
      }
    } finally {
      if (following.get(chatId) === controller) following.delete(chatId);
      update(chatId, () => ({ connection: "idle" }));
    }
  })();
}

/** Stop following a chat (the page closed); a reply keeps being generated on the server. */
export function unfollowLiveChat(chatId: string): void {
  following.get(chatId)?.abort();
  following.delete(chatId);
}

/** Seed the store with in-flight messages from history (after a reload) and follow them. */
export function resumeFromHistory(chatId: string, messages: Message[]): void {
  const inFlight = messages.filter((m) => m.sender === "agent" && isInFlight(m));
  const { connection } = get(chatId);
  // The send request is still streaming this reply: no second connection for it.
  if (inFlight.length === 0 || following.has(chatId) || connection === "sending" || connection === "streaming") return;
  // Resume right after what history showed (ids are `<message id>:<characters delivered>`), so
  // a reply that finished in between is still replayed to its end instead of never arriving.
  const first = inFlight[0];
  update(chatId, (chat) => ({
    messages: inFlight.reduce(upsert, chat.messages),
    lastEventId: chat.lastEventId ?? (first ? `${first.id}:${first.content.length}` : null),
  }));
  followLiveChat(chatId);
}

let localCounter = 0;

/**
 * Send a message and stream the reply into the store. `key` is the chat id, or a temporary key for
 * a new chat; `onChatId` is called as soon as a new chat has its id.
 */
export async function sendLiveMessage({
  key,
  chatId,
  agentId,
  agentIds,
  mode,
  parentMessageId,
  content,
  onChatId,
  awaitTitle = false,
}: {
  key: string;
  chatId?: string;
  agentId?: string;
  /** A new chat with several agents (the first is the default), answering in `mode`. */
  agentIds?: string[];
  mode?: SendInput["mode"];
  /** The end of the branch on screen, when it is not the chat's newest. */
  parentMessageId?: string;
  content: string;
  onChatId: (chatId: string) => void;
  /** A new chat whose agent will propose its title: wait for it after the first reply. */
  awaitTitle?: boolean;
}): Promise<boolean> {
  localCounter += 1;
  const now = new Date().toISOString();
  const optimistic: Message = {
    id: `local-${localCounter}`,
    chat_id: chatId ?? "",
    sender: "user",
    content,
    status: "pending",
    input_tokens: 0,
    output_tokens: 0,
    model: null,
    finish_reason: null,
    error: null,
    created_at: now,
    updated_at: now,
  };
  update(key, (chat) => ({ messages: [...chat.messages, optimistic], connection: "sending", error: null }));
  const idempotencyKey = randomId();
  let currentKey = key;
  try {
    const response = await sendMessage({ content, chatId, agentId, agentIds, mode, parentMessageId, idempotencyKey });
    const type = response.headers.get("Content-Type") ?? "";
    if (type.includes("text/event-stream") && response.body) {
      currentKey = await consume(response.body, key, onChatId, false);
    } else {
      // A server that answered with JSON: show the stored messages, then follow the stream.
      const answer = (await response.json()) as SendResult;
      chats.set(answer.chat_id, { ...get(key), ...get(answer.chat_id) });
      if (answer.chat_id !== key) chats.delete(key);
      currentKey = answer.chat_id;
      if (answer.chat_id !== chatId) onChatId(answer.chat_id);
      update(currentKey, (chat) => ({
        // Every reply this send starts (a panel's, or each @named agent's), in order.
        messages: (answer.agent_messages.length ? answer.agent_messages : [answer.agent_message]).reduce(
          upsert,
          upsert(chat.messages.filter((m) => m.id !== optimistic.id), answer.user_message),
        ),
      }));
    }
  } catch (error) {
    // Nothing stored when the send itself failed (limit, validation): drop the optimistic copy
    // and show why; a broken stream after the message was stored is resumed by following.
    // The optimistic copy is replaced when the server confirms the message (message.created).
    const stored = !get(currentKey).messages.some((m) => m.id === optimistic.id);
    if (!stored) {
      update(currentKey, (chat) => ({ messages: chat.messages.filter((m) => m.id !== optimistic.id), connection: "idle", error }));
      return false;
    }
  }
  if (anyInFlight(currentKey) && !currentKey.startsWith("new-")) {
    update(currentKey, () => ({ connection: "reconnecting" }));
    followLiveChat(currentKey);
  } else {
    update(currentKey, () => ({ connection: "idle" }));
    if (awaitTitle && !chatId && !currentKey.startsWith("new-")) void awaitProposedTitle(currentKey, get(currentKey).lastEventId);
  }
  return true;
}

/**
 * A new branch of a chat (a regeneration, an edit): `start` makes the streamed request; the
 * first message it creates is named to `onBranch` (the page shows the branch through it), and
 * its reply streams into the store like a send's.
 */
export async function streamBranch({
  chatId,
  start,
  onBranch,
}: {
  chatId: string;
  start: (idempotencyKey: string) => Promise<Response>;
  onBranch: (messageId: string) => void;
}): Promise<boolean> {
  update(chatId, () => ({ connection: "sending", error: null }));
  let branched = false;
  try {
    const response = await start(randomId());
    if (!response.body) throw new Error("The server sent no reply stream.");
    await consume(response.body, chatId, () => undefined, false, (message) => {
      if (branched) return;
      branched = true;
      onBranch(message.id);
      void queryClient.invalidateQueries({ queryKey: historyQueryKey(chatId) });
    });
  } catch (error) {
    if (!branched) {
      update(chatId, () => ({ connection: "idle", error }));
      return false;
    }
  }
  if (anyInFlight(chatId)) {
    update(chatId, () => ({ connection: "reconnecting" }));
    followLiveChat(chatId);
  } else {
    update(chatId, () => ({ connection: "idle" }));
  }
  return true;
}

export function clearLiveError(key: string): void {
  update(key, () => ({ error: null }));
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The live state of one chat (messages being streamed, connection, last error). */
export function useLiveChat(key: string): LiveChat {
  return useSyncExternalStore(
    subscribe,
    () => get(key),
    () => EMPTY,
  );
}

/** Forget everything (logout). */
export function resetLiveChats(): void {
  for (const controller of following.values()) controller.abort();
  following.clear();
  chats.clear();
  notify();
}
