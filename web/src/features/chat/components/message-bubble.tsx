import { memo } from "react";
import { MarkdownView } from "@/components/markdown";
import type { Message } from "../api/types";
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

/** One message: the user's as plain text, the agent's as safe markdown with its status. */
export const MessageBubble = memo(function MessageBubble({ message, agentName }: { message: Message; agentName: string }) {
  const isUser = message.sender === "user";
  return (
    <article
      className={`message message--${message.sender} message--${message.status}`}
      data-testid={isUser ? "user-message" : "agent-message"}
      data-status={message.status}
      data-message-id={message.id}
      aria-busy={message.status === "streaming" || message.status === "pending" || undefined}
    >
      {!isUser ? (
        <span className="message__avatar" aria-hidden="true">
          {agentName.charAt(0).toUpperCase()}
        </span>
      ) : null}
      <div className="message__bubble">
        {!isUser ? <p className="message__author">{agentName}</p> : null}
        {isUser ? (
          <p className="message__text">{message.content}</p>
        ) : message.status === "pending" && !message.content ? (
          <TypingDots />
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
      </div>
    </article>
  );
});
