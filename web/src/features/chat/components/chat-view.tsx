import { useCallback, useEffect, useMemo, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import { EmptyState } from "@/components/ui/empty-state";
import { SearchIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { ApiError } from "@/lib/api-error";
import { useDeleteChat } from "../api/delete-chat";
import { editMessage } from "../api/edit-message";
import { useHistory } from "../api/get-history";
import { regenerateMessage } from "../api/regenerate-message";
import { useStopMessage } from "../api/stop-message";
import { type Message, isInFlight } from "../api/types";
import { useRenameChat } from "../api/update-chat";
import { clearLiveError, resumeFromHistory, sendLiveMessage, streamBranch, unfollowLiveChat, useLiveChat } from "../stores/live-chats";
import { type ChatAgent, type ChatMode, participantsOf } from "../participants";
import { ChatExportMenu } from "./chat-export-menu";
import { Composer } from "./composer";
import { ConnectionBanner } from "./connection-banner";
import { MentionError } from "./mention-error";
import type { MessageActions, ShownMessage } from "./message-bubble";
import { MessageList } from "./message-list";
import { ParticipantsEditor } from "./participants-editor";
import { SendError } from "./send-error";

/**
 * History pages of the branch on screen (oldest first) overlaid with what is streaming live. A
 * live message joins only where it continues that branch: a reply streamed into another branch
 * (before a switch, or a regeneration's old sibling) stays there. A delegated answer is no step
 * of a branch: it joins wherever the orchestrator reply it answers is shown.
 */
function mergeMessages(history: ShownMessage[], live: Message[]): ShownMessage[] {
  const liveById = new Map(live.map((m) => [m.id, m]));
  const seen = new Set<string>();
  const merged: ShownMessage[] = history.map((stored) => {
    seen.add(stored.id);
    const current = liveById.get(stored.id);
    // A finished stored copy beats a live copy still marked in flight (its stream ended unseen).
    if (!current || (isInFlight(current) && !isInFlight(stored))) return stored;
    return { ...stored, ...current };
  });
  for (const message of live) {
    if (seen.has(message.id)) continue;
    const last = merged[merged.length - 1];
    const continues = (message.parent_id ?? null) === (last?.id ?? null);
    const consulted = Boolean(message.delegated) && Boolean(message.parent_id) && seen.has(message.parent_id ?? "");
    if (message.id.startsWith("local-") || continues || consulted) {
      merged.push(message);
      seen.add(message.id);
    }
  }
  return merged;
}

function composerPlaceholder(mode: ChatMode | undefined, agent: ChatAgent | undefined, mentions: boolean): string | undefined {
  if (mode === "panel") return "Message the panel…";
  if (!agent) return undefined;
  if (mentions) return `Message ${agent.name}, or @mention another agent…`;
  return `Message ${agent.name}…`;
}

function ChatTitle({ chatId, title }: { chatId: string; title: string }) {
  const rename = useRenameChat();
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(title);
  if (!editing) {
    return (
      <button
        type="button"
        className="chat-header__title"
        title="Rename chat"
        onClick={() => {
          setValue(title);
          setEditing(true);
        }}
      >
        {title || "Untitled chat"}
      </button>
    );
  }
  return (
    <form
      className="chat-header__rename"
      onSubmit={(event) => {
        event.preventDefault();
        if (value.trim()) rename.mutate({ id: chatId, title: value.trim() }, { onSuccess: () => setEditing(false) });
      }}
    >
      <input className="input input--sm" aria-label="Chat title" value={value} maxLength={200} onChange={(e) => setValue(e.target.value)} autoFocus onKeyDown={(e) => e.key === "Escape" && setEditing(false)} />
      <Button type="submit" size="sm" loading={rename.isPending}>
        Save
      </Button>
    </form>
  );
}

// Pages of history loaded back at most, looking for a message a link points at (50 each).
const TARGET_PAGES = 20;

/** `#message-<id>` (a search result): load older pages until the message is there, then show it. */
function useScrollToTarget(
  hash: string,
  messages: Message[],
  history: { hasNextPage: boolean; isFetchingNextPage: boolean; fetchNextPage: () => unknown; data?: { pages: unknown[] } },
) {
  const targetId = hash.startsWith("#message-") ? hash.slice("#message-".length) : "";
  const present = Boolean(targetId) && messages.some((m) => m.id === targetId);
  const pages = history.data?.pages.length ?? 0;
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = history;
  useEffect(() => {
    if (!targetId) return;
    if (!present) {
      if (hasNextPage && !isFetchingNextPage && pages < TARGET_PAGES) void fetchNextPage();
      return;
    }
    // After the list's own scroll to the newest message.
    const timer = setTimeout(() => {
      const element = document.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(targetId)}"]`);
      if (!element) return;
      element.scrollIntoView({ block: "center" });
      element.classList.add("message-target");
    }, 100);
    return () => clearTimeout(timer);
  }, [targetId, present, pages, hasNextPage, isFetchingNextPage, fetchNextPage]);
}

/** An existing chat: history with scroll-back, live replies, stop, rename, delete. */
export function ChatView({ chatId, agents }: { chatId: string; agents: ChatAgent[] }) {
  const navigate = useNavigate();
  // The branch on screen: through this message (null: the newest one).
  // (Remembered with its chat: another chat opens on its newest branch.)
  const [shown, setShown] = useState<{ chatId: string; leaf: string | null }>({ chatId, leaf: null });
  const leaf = shown.chatId === chatId ? shown.leaf : null;
  const setLeaf = useCallback((messageId: string) => setShown({ chatId, leaf: messageId }), [chatId]);
  const history = useHistory(chatId, leaf);
  const live = useLiveChat(chatId);
  const stop = useStopMessage();
  const remove = useDeleteChat();
  const [confirmDelete, setConfirmDelete] = useState(false);

  const newestPage = history.data?.pages[0];
  useEffect(() => {
    if (newestPage) resumeFromHistory(chatId, newestPage.messages);
  }, [chatId, newestPage]);
  useEffect(() => () => unfollowLiveChat(chatId), [chatId]);

  const historyMessages = useMemo(() => (history.data ? [...history.data.pages].reverse().flatMap((page) => page.messages) : []), [history.data]);
  const messages = useMemo(() => mergeMessages(historyMessages, live.messages), [historyMessages, live.messages]);
  const inFlight = messages.find((m) => m.sender === "agent" && isInFlight(m) && !m.id.startsWith("local-"));
  const chat = newestPage?.chat;
  useScrollToTarget(useLocation().hash, messages, history);
  const agent = agents.find((a) => a.id === chat?.agent_id);
  const participantIds = chat?.agent_ids;
  const participants = useMemo(() => (participantIds ? participantsOf(participantIds, agents) : agent ? [agent] : []), [participantIds, agents, agent]);
  // Only a direct chat routes @mentions: a panel answers everyone, an orchestrator decides itself.
  const mentionables = chat?.mode === "direct" && participants.length > 1 ? participants.filter((p) => agents.some((a) => a.id === p.id)) : [];
  const busy = Boolean(inFlight) || live.connection === "sending";
  const onRegenerate = useCallback(
    (message: ShownMessage) => void streamBranch({ chatId, start: (key) => regenerateMessage(message.id, key), onBranch: setLeaf }),
    [chatId, setLeaf],
  );
  const onEdit = useCallback(
    (message: ShownMessage, content: string) => void streamBranch({ chatId, start: (key) => editMessage(message.id, key, content), onBranch: setLeaf }),
    [chatId, setLeaf],
  );
  const actions = useMemo<MessageActions>(() => ({ onRegenerate, onEdit, onSwitch: setLeaf, busy }), [onRegenerate, onEdit, setLeaf, busy]);
  // On another branch than the newest, a new message continues the one on screen.
  const branchEnd = leaf ? [...messages].reverse().find((m) => !m.id.startsWith("local-"))?.id : undefined;

  if (history.isPending) return <LoadingState label="Loading conversation…" />;
  if (history.error instanceof ApiError && (history.error.status === 404 || history.error.status === 422)) {
    return (
      <div className="page-center">
        <EmptyState title="Chat not found" icon={<SearchIcon size={22} />} action={<Link className="btn btn--primary" to="/chat">Start a new chat</Link>}>
          This chat does not exist or is not yours.
        </EmptyState>
      </div>
    );
  }

  return (
    <div className="chat">
      <header className="chat-header">
        <div className="chat-header__main">
          <ChatTitle key={chat?.title} chatId={chatId} title={chat?.title ?? ""} />
          {chat ? <ParticipantsEditor chat={chat} agents={agents} /> : null}
        </div>
        <ChatExportMenu chatId={chatId} />
        <Button variant="ghost" size="sm" onClick={() => setConfirmDelete(true)} aria-label="Delete chat">
          Delete
        </Button>
      </header>
      <ConnectionBanner connection={live.connection} />
      {history.error ? (
        // Any other failure (a rate limit, an outage) keeps the page: header, composer, and the
        // reason where the conversation goes, with the way to ask again.
        <div className="chat__error">
          <ErrorAlert error={history.error} onRetry={() => void history.refetch()} />
        </div>
      ) : null}
      {history.data ? (
        <MessageList
          messages={messages}
          // Replies of agents since removed from the chat keep their names too.
          agents={[...participants, ...agents.filter((a) => !participants.includes(a))]}
          hasOlder={Boolean(history.hasNextPage)}
          loadingOlder={history.isFetchingNextPage}
          onLoadOlder={() => void history.fetchNextPage()}
          actions={actions}
        />
      ) : (
        <div className="chat__spacer" />
      )}
      <div className="chat__footer">
        <SendError error={live.error ?? stop.error} onDismiss={() => clearLiveError(chatId)} />
        <Composer
          streaming={Boolean(inFlight) || live.connection === "sending"}
          disabled={!agent && Boolean(chat)}
          // The same words as before the first message: the agent is named, not "your agent".
          placeholder={composerPlaceholder(chat?.mode, agent, mentionables.length > 0)}
          mentionables={mentionables}
          onStop={() => inFlight && stop.mutate(inFlight.id)}
          onSend={(content) => sendLiveMessage({ key: chatId, chatId, content, parentMessageId: branchEnd, onChatId: () => undefined })}
        />
        <MentionError error={live.error} />
        <p className="chat__disclaimer muted small">Agents can make mistakes. Check important information.</p>
      </div>
      <Dialog open={confirmDelete} title="Delete chat" onClose={() => setConfirmDelete(false)}>
        <div className="form">
          <p>Delete this chat and all its messages? This cannot be undone.</p>
          {remove.error ? <ErrorAlert error={remove.error} /> : null}
          <div className="form-actions">
            <Button variant="secondary" onClick={() => setConfirmDelete(false)}>
              Cancel
            </Button>
            <Button variant="danger" loading={remove.isPending} onClick={() => remove.mutate(chatId, { onSuccess: () => navigate("/chat", { replace: true }) })}>
              Delete chat
            </Button>
          </div>
        </div>
      </Dialog>
    </div>
  );
}
