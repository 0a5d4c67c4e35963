import { useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { AgentIcon, PlusIcon } from "@/components/ui/icons";
import { Dialog } from "@/components/ui/dialog";
import { EmptyState } from "@/components/ui/empty-state";
import { LoadingState } from "@/components/ui/spinner";
import { useDeleteAgent } from "../api/delete-agent";
import { type Agent, useMyAgents } from "../api/get-my-agents";
import { AgentCard } from "./agent-card";
import { AgentForm } from "./agent-form";
import { AgentTry } from "./agent-try";

type Panel = { kind: "create" } | { kind: "edit"; agent: Agent } | { kind: "try"; agent: Agent } | { kind: "delete"; agent: Agent } | null;

/** The agents page body: list, create, edit, delete, try. */
export function AgentsManager() {
  const agents = useMyAgents();
  const remove = useDeleteAgent();
  const [panel, setPanel] = useState<Panel>(null);
  const close = () => {
    setPanel(null);
    remove.reset();
  };

  return (
    <Card>
      <CardHeader
        title="Your agents"
        description="Each agent pairs a model with instructions. Chat with it or try it here."
        action={
          <Button onClick={() => setPanel({ kind: "create" })} icon={<PlusIcon />}>
            New agent
          </Button>
        }
      />
      {agents.isPending ? <LoadingState label="Loading agents…" /> : null}
      {agents.error ? <ErrorAlert error={agents.error} onRetry={() => void agents.refetch()} /> : null}
      {agents.data && agents.data.items.length === 0 ? (
        <EmptyState
          icon={<AgentIcon size={22} />}
          title="No agents yet"
          action={
            <Button onClick={() => setPanel({ kind: "create" })}>Create your first agent</Button>
          }
        >
          Create an agent to start chatting. The Echo provider works offline and is perfect for a first try.
        </EmptyState>
      ) : null}
      {agents.data && agents.data.items.length > 0 ? (
        <div className="agent-grid">
          {agents.data.items.map((agent) => (
            <AgentCard
              key={agent.id}
              agent={agent}
              chatHref={`/chat?agent=${encodeURIComponent(agent.id)}`}
              onEdit={() => setPanel({ kind: "edit", agent })}
              onTry={() => setPanel({ kind: "try", agent })}
              onDelete={() => setPanel({ kind: "delete", agent })}
            />
          ))}
        </div>
      ) : null}

      <Dialog open={panel?.kind === "create" || panel?.kind === "edit"} title={panel?.kind === "edit" ? `Edit ${panel.agent.name}` : "New agent"} onClose={close} wide>
        {panel?.kind === "edit" ? <AgentForm agent={panel.agent} onDone={close} /> : <AgentForm onDone={close} />}
      </Dialog>
      <Dialog open={panel?.kind === "try"} title={panel?.kind === "try" ? `Try ${panel.agent.name}` : "Try"} onClose={close} wide>
        {panel?.kind === "try" ? <AgentTry agent={panel.agent} /> : null}
      </Dialog>
      <Dialog open={panel?.kind === "delete"} title="Delete agent" onClose={close}>
        {panel?.kind === "delete" ? (
          <div className="form">
            <p>
              Delete <strong>{panel.agent.name}</strong>? Existing chats keep their messages, but you can no longer send to this agent.
            </p>
            {remove.error ? <ErrorAlert error={remove.error} /> : null}
            <div className="form-actions">
              <Button variant="secondary" onClick={close}>
                Cancel
              </Button>
              <Button variant="danger" loading={remove.isPending} onClick={() => remove.mutate(panel.agent.id, { onSuccess: close })}>
                Delete agent
              </Button>
            </div>
          </div>
        ) : null}
      </Dialog>
    </Card>
  );
}
