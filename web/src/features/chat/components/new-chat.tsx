import { randomId } from "@/lib/random-id";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { EmptyState } from "@/components/ui/empty-state";
import { AgentIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { clearLiveError, sendLiveMessage, useLiveChat } from "../stores/live-chats";
import type { ChatAgent } from "./chat-view";
import { Composer } from "./composer";
import { SendError } from "./send-error";
import { MessageList } from "./message-list";

const SUGGESTIONS = ["Summarise the key points of a long email", "Draft a friendly reply to a customer", "Explain a concept like I'm new to it"];

/** A new chat: pick an agent, write the first message; the page moves to the chat once it exists. */
export function NewChat({
  agents,
  loading,
  defaultAgentId,
  awaitTitle = false,
}: {
  agents: ChatAgent[];
  loading: boolean;
  defaultAgentId?: string | null;
  /** The agent proposes the chat's title after the first reply (a user preference). */
  awaitTitle?: boolean;
}) {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [key] = useState(() => `new-${randomId()}`);
  const live = useLiveChat(key);
  const requested = params.get("agent");
  const initial = agents.find((a) => a.id === requested)?.id ?? agents.find((a) => a.id === defaultAgentId)?.id ?? agents[0]?.id ?? "";
  const [picked, setPicked] = useState<string>("");
  const agentId = picked || initial;
  const agent = agents.find((a) => a.id === agentId);

  if (loading) return <LoadingState label="Loading agents…" />;
  if (agents.length === 0) {
    return (
      <div className="page-center">
        <EmptyState icon={<AgentIcon size={22} />} title="Create an agent first" action={<Link className="btn btn--primary" to="/agents">Create an agent</Link>}>
          Chats are conversations with one of your agents.
        </EmptyState>
      </div>
    );
  }

  const send = (content: string) =>
    sendLiveMessage({ key, agentId, content, awaitTitle, onChatId: (chatId) => navigate(`/chat/${chatId}`, { replace: true }) });

  return (
    <div className="chat">
      <header className="chat-header">
        <div className="chat-header__main">
          <h1 className="chat-header__heading">New chat</h1>
          <p className="chat-header__meta muted small">{agent ? `${agent.name} · ${agent.model}` : ""}</p>
        </div>
      </header>
      {live.messages.length > 0 ? (
        <MessageList messages={live.messages} agentName={agent?.name ?? "Agent"} hasOlder={false} loadingOlder={false} onLoadOlder={() => undefined} />
      ) : (
        <div className="new-chat">
          <h2 className="new-chat__title">Who do you want to talk to?</h2>
          <div className="agent-picker" role="radiogroup" aria-label="Agent">
            {agents.map((option) => (
              <label key={option.id} className={`agent-picker__option ${option.id === agentId ? "is-selected" : ""}`}>
                <input type="radio" name="agent" value={option.id} checked={option.id === agentId} onChange={() => setPicked(option.id)} />
                <span className="agent-card__icon" aria-hidden="true">
                  {option.name.charAt(0).toUpperCase()}
                </span>
                <span className="agent-picker__text">
                  <span className="agent-picker__name">{option.name}</span>
                  <span className="muted small">{option.model}</span>
                </span>
              </label>
            ))}
          </div>
          <ul className="suggestions">
            {SUGGESTIONS.map((suggestion) => (
              <li key={suggestion}>
                <button type="button" className="suggestion" onClick={() => void send(suggestion)}>
                  {suggestion}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      <div className="chat__footer">
        <SendError error={live.error} onDismiss={() => clearLiveError(key)} />
        <Composer streaming={live.connection === "sending" || live.connection === "streaming"} disabled={!agent} onSend={send} placeholder={agent ? `Message ${agent.name}…` : "Pick an agent"} />
      </div>
    </div>
  );
}
