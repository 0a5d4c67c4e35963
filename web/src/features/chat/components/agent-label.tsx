import { agentColour } from "@/lib/agent-colour";
import type { ChatAgent } from "../participants";

/** An agent's initial on its own colour (derived from its id, so it never changes). */
export function AgentAvatar({ agent, size = "md", className = "" }: { agent: Pick<ChatAgent, "id" | "name">; size?: "sm" | "md"; className?: string }) {
  return (
    <span className={`agent-avatar agent-avatar--${size} ${className}`} style={{ background: agentColour(agent.id) }} aria-hidden="true" data-agent-id={agent.id}>
      {agent.name.charAt(0).toUpperCase() || "?"}
    </span>
  );
}

/** Who wrote a reply: avatar and name. */
export function AgentLabel({ agent }: { agent: Pick<ChatAgent, "id" | "name"> }) {
  return (
    <span className="agent-label" data-testid="agent-label">
      <AgentAvatar agent={agent} size="sm" />
      <span className="agent-label__name">{agent.name}</span>
    </span>
  );
}
