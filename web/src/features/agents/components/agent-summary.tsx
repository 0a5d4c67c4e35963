import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { LoadingState } from "@/components/ui/spinner";
import { useMyAgents } from "../api/get-my-agents";
import { providerLabel } from "../api/get-providers";

/** The dashboard's "my agents" card. */
export function AgentSummary() {
  const agents = useMyAgents();
  return (
    <Card>
      <CardHeader
        title="My agents"
        action={
          <Link className="btn btn--secondary btn--sm" to="/agents">
            Manage
          </Link>
        }
      />
      {agents.isPending ? <LoadingState /> : null}
      {agents.error ? <ErrorAlert error={agents.error} onRetry={() => void agents.refetch()} /> : null}
      {agents.data && agents.data.items.length === 0 ? (
        <EmptyState
          title="No agents yet"
          action={
            <Link className="btn btn--primary btn--sm" to="/agents">
              Create an agent
            </Link>
          }
        >
          An agent is a model plus your instructions.
        </EmptyState>
      ) : null}
      {agents.data && agents.data.items.length > 0 ? (
        <ul className="list">
          {agents.data.items.slice(0, 6).map((agent) => (
            <li key={agent.id} className="list__item">
              <span className="agent-card__icon agent-card__icon--sm" aria-hidden="true">
                {agent.name.charAt(0).toUpperCase()}
              </span>
              <div className="list__main">
                <span className="list__title">{agent.name}</span>
                <span className="muted small">
                  {providerLabel(agent.llm_provider)} · {agent.model}
                </span>
              </div>
              <Link className="btn btn--ghost btn--sm" to={`/chat?agent=${encodeURIComponent(agent.id)}`}>
                Chat
              </Link>
            </li>
          ))}
        </ul>
      ) : null}
    </Card>
  );
}
