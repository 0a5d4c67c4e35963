import { memo, useState } from "react";
import { MarkdownView } from "@/components/markdown";
import { CopyButton } from "@/components/ui/copy-button";
import type { Message } from "../api/types";
import type { ChatAgent } from "../participants";
import { AgentAvatar } from "./agent-label";
import { Citations } from "./citations";
import { MessageBranches } from "./message-branches";
import { MessageEditor } from "./message-editor";

/** A message as the list shows it: with its versions' ids when it came from a branch's history. */
export type ShownMessage = Message & { sibling_ids?: string[] };

/** What a reader can do with a message besides reading it (absent: nothing). */
export interface MessageActions {
  /** Another reply in place of this agent's. */
  onRegenerate: (message: ShownMessage) => void;
  /** A new wording of this user's message, answered anew. */
  onEdit: (message: ShownMessage, content: string) => void;
  /** Show the branch through another version of a message. */
  onSwitch: (messageId: string) => void;
  /** A reply is being generated: no new branch until it is done. */
  busy: boolean;
}

function TypingDots() {
  return (
    <span className="typing" role="status" aria-label="Agent is thinking">
      <span />
      <span />
      <span />
    </span>
  );
}

// A user message longer than this (characters or lines) starts collapsed behind "Show more".
const COLLAPSE_CHARACTERS = 700;
const COLLAPSE_LINES = 12;

function isLong(text: string): boolean {
  return text.length > COLLAPSE_CHARACTERS || text.split("\n").length > COLLAPSE_LINES;
}

/** The user's words as plain text; a long message collapsed until the reader asks for more. */
function UserText({ content }: { content: string }) {
  const long = isLong(content);
  const [expanded, setExpanded] = useState(false);
  const collapsed = long && !expanded;
  return (
    <>
      <p className={`message__text ${collapsed ? "message__text--collapsed" : ""}`}>{content}</p>
      {long ? (
        <button type="button" className="link-btn small message__more" aria-expanded={expanded} onClick={() => setExpanded(!expanded)}>
          {expanded ? "Show less" : "Show more"}
        </button>
      ) : null}
    </>
  );
}

/** One message: the user's as plain text, the agent's as safe markdown with its status, labelled with its agent. */
export const MessageBubble = memo(function MessageBubble({
  message,
  agent,
  queued = false,
  actions,
}: {
  message: ShownMessage;
  agent: Pick<ChatAgent, "id" | "name">;
  queued?: boolean;
  actions?: MessageActions;
}) {
  const isUser = message.sender === "user";
  const [editing, setEditing] = useState(false);
  const finished = message.status !== "pending" && message.status !== "streaming";
  const stored = !message.id.startsWith("local-");
  return (
    <article
      className={`message message--${message.sender} message--${message.status}`}
      data-testid={isUser ? "user-message" : "agent-message"}
      data-status={message.status}
      data-message-id={message.id}
      data-agent-id={isUser ? undefined : agent.id}
      aria-busy={message.status === "streaming" || message.status === "pending" || undefined}
    >
      {!isUser ? <AgentAvatar agent={agent} className="message__avatar" /> : null}
      <div className="message__bubble">
        {!isUser ? (
          <p className="message__author" data-testid="message-author">
            {agent.name}
          </p>
        ) : null}
        {isUser && editing && actions ? (
          <MessageEditor
            initial={message.content}
            onCancel={() => setEditing(false)}
            onSave={(content) => {
              setEditing(false);
              actions.onEdit(message, content);
            }}
          />
        ) : isUser ? (
          <UserText content={message.content} />
        ) : message.status === "pending" && !message.content ? (
          queued ? (
            <p className="message__note muted">Waiting for its turn…</p>
          ) : (
            <TypingDots />
          )
        ) : (
          <div className="message__content">
            <MarkdownView source={message.content} />
            {message.status === "streaming" ? <span className="caret" aria-hidden="true" /> : null}
          </div>
        )}
        {!isUser && message.citations?.length ? <Citations citations={message.citations} /> : null}
        {message.status === "stopped" ? <p className="message__note">Stopped</p> : null}
        {message.status === "failed" ? (
          <p className="message__note message__note--error">
            The reply failed{message.error ? `: ${message.error}` : "."}
          </p>
        ) : null}
        {finished && stored && !editing ? (
          <div className="message__actions">
            {message.content ? <CopyButton text={message.content} label="Copy message" /> : null}
            {actions && isUser ? (
              <button type="button" className="copy-btn" aria-label="Edit message" disabled={actions.busy} onClick={() => setEditing(true)}>
                Edit
              </button>
            ) : null}
            {actions && !isUser ? (
              <button type="button" className="copy-btn" aria-label="Regenerate reply" disabled={actions.busy} onClick={() => actions.onRegenerate(message)}>
                Regenerate
              </button>
            ) : null}
            {actions && message.sibling_ids ? <MessageBranches messageId={message.id} siblingIds={message.sibling_ids} onSwitch={actions.onSwitch} /> : null}
          </div>
        ) : null}
      </div>
    </article>
  );
});
