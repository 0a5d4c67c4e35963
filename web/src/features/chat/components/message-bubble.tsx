import { memo, useState } from "react";
import { MarkdownView } from "@/components/markdown";
import { CopyButton } from "@/components/ui/copy-button";
import type { Message } from "../api/types";
import type { ChatAgent } from "../participants";
import { AgentAvatar } from "./agent-label";
import { Citations } from "./citations";

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
export const MessageBubble = memo(function MessageBubble({ message, agent, queued = false }: { message: Message; agent: Pick<ChatAgent, "id" | "name">; queued?: boolean }) {
  const isUser = message.sender === "user";
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
        {isUser ? (
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
        {message.content && message.status !== "pending" && message.status !== "streaming" ? (
          <div className="message__actions">
            <CopyButton text={message.content} label="Copy message" />
          </div>
        ) : null}
      </div>
    </article>
  );
});
