import { randomId } from "@/lib/random-id";
import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { EmptyState } from "@/components/ui/empty-state";
import { AgentIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { type ChatAgent, participantsOf } from "../participants";
import { clearLiveError, sendLiveMessage, useLiveChat } from "../stores/live-chats";
import { Composer } from "./composer";
import { MentionError } from "./mention-error";
import { MessageList } from "./message-list";
import { type Participants, ParticipantsPicker } from "./participants-picker";
import { SendError } from "./send-error";

const SUGGESTIONS = ["Summarise the key points of a long email", "Draft a friendly reply to a customer", "Explain a concept like I'm new to it"];

/**
 * A new chat: pick the agent (or several, and how they answer), write the first message; the page
 * moves to the chat once it exists.
 */
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
  const [picked, setPicked] = useState<Participants | null>(null);
  // Until the person picks, the requested or preferred agent alone; agents deleted meanwhile drop out.
  const chosen: Participants = picked
    ? { ...picked, agentIds: picked.agentIds.filter((id) => agents.some((a) => a.id === id)) }
    : { agentIds: initial ? [initial] : [], mode: "direct" };
  const participants = participantsOf(chosen.agentIds, agents);
  const agent = participants[0];

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
    sendLiveMessage({
      key,
      agentIds: chosen.agentIds,
      mode: chosen.mode,
      content,
      awaitTitle,
      onChatId: (chatId) => navigate(`/chat/${chatId}`, { replace: true }),
    });
  const several = participants.length > 1;
  const placeholder = !agent ? "Pick an agent" : chosen.mode === "panel" && several ? "Message the panel…" : several && chosen.mode === "direct" ? `Message ${agent.name}, or @mention another agent…` : `Message ${agent.name}…`;

  return (
    <div className="chat">
      <header className="chat-header">
        <div className="chat-header__main">
          <h1 className="chat-header__heading">New chat</h1>
          <p className="chat-header__meta muted small">{several ? participants.map((p) => p.name).join(", ") : agent ? `${agent.name} · ${agent.model}` : ""}</p>
        </div>
      </header>
      {live.messages.length > 0 ? (
        <MessageList messages={live.messages} agents={participants} hasOlder={false} loadingOlder={false} onLoadOlder={() => undefined} />
      ) : (
        <div className="new-chat">
          <h2 className="new-chat__title">Who do you want to talk to?</h2>
          <ParticipantsPicker name="new-chat" agents={agents} value={chosen} onChange={setPicked} />
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
        <Composer
          streaming={live.connection === "sending" || live.connection === "streaming"}
          disabled={!agent}
          onSend={send}
          placeholder={placeholder}
          mentionables={several && chosen.mode === "direct" ? participants : []}
        />
        <MentionError error={live.error} />
      </div>
    </div>
  );
}
