import { Link } from "react-router";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { formatRelativeTime } from "@/lib/format";
import type { Agent } from "../api/get-my-agents";
import { providerLabel } from "../api/get-providers";

export function AgentCard({ agent, onEdit, onDelete, onTry, chatHref }: { agent: Agent; onEdit: () => void; onDelete: () => void; onTry: () => void; chatHref?: string }) {
  return (
    <article className="agent-card" data-testid="agent-card">
      <header className="agent-card__header">
        <span className="agent-card__icon" aria-hidden="true">
          {agent.name.charAt(0).toUpperCase()}
        </span>
        <div className="agent-card__title">
          <h3>{agent.name}</h3>
          <p className="muted">
            {providerLabel(agent.llm_provider)} · {agent.model}
          </p>
        </div>
      </header>
      <p className="agent-card__instructions">{agent.instructions || <span className="muted">No instructions</span>}</p>
      <footer className="agent-card__footer">
        <span className="agent-card__meta muted small">
          {agent.llm_provider === "echo" ? <Badge tone="warning">Demo</Badge> : null}
          Temp {agent.temperature ?? "default"} · {formatRelativeTime(agent.created_at)}
        </span>
        <div className="agent-card__actions">
          {chatHref ? (
            <Link className="btn btn--ghost btn--sm" to={chatHref}>
              Chat
            </Link>
          ) : null}
          <Button variant="ghost" size="sm" onClick={onTry}>
            Try
          </Button>
          <Button variant="ghost" size="sm" onClick={onEdit}>
            Edit
          </Button>
          <Button variant="ghost" size="sm" className="btn--danger-text" onClick={onDelete}>
            Delete
          </Button>
        </div>
      </footer>
    </article>
  );
}
