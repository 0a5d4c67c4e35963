import { useId, useState } from "react";
import { type Message, isInFlight } from "../api/types";
import type { ChatAgent } from "../participants";
import { MessageBubble } from "./message-bubble";

/** The answers an orchestrator's delegates gave it, nested under its reply; collapsible, streaming live. */
export function DelegatedAnswers({ messages, agentFor }: { messages: Message[]; agentFor: (message: Message) => Pick<ChatAgent, "id" | "name"> }) {
  const [expanded, setExpanded] = useState(true);
  const regionId = useId();
  const names = [...new Set(messages.map((message) => agentFor(message).name))];
  const working = messages.some(isInFlight);
  return (
    <section className="delegated" data-testid="delegated-answers" aria-label="Delegated answers">
      <button type="button" className="delegated__toggle link-btn small" aria-expanded={expanded} aria-controls={regionId} onClick={() => setExpanded(!expanded)}>
        <span className={`delegated__chevron ${expanded ? "is-open" : ""}`} aria-hidden="true">
          ▸
        </span>
        {working ? "Consulting" : "Consulted"} {names.join(", ")}
      </button>
      <div id={regionId} className="delegated__answers" hidden={!expanded}>
        {messages.map((message) => (
          <MessageBubble key={message.id} message={message} agent={agentFor(message)} />
        ))}
      </div>
    </section>
  );
}
