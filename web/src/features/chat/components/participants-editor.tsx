import { useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Dialog } from "@/components/ui/dialog";
import type { Chat } from "../api/types";
import { useUpdateParticipants } from "../api/update-chat";
import { type ChatAgent, MODES, participantsOf } from "../participants";
import { AgentAvatar } from "./agent-label";
import { type Participants, ParticipantsPicker } from "./participants-picker";
import { PlanGateNotice, multiAgentRefusal } from "./plan-gate-notice";

function same(a: Participants, b: Participants): boolean {
  return a.mode === b.mode && a.agentIds.join() === b.agentIds.join();
}

/** The chat header's participants (avatars, names, mode) and the dialog that changes them (PATCH). */
export function ParticipantsEditor({ chat, agents }: { chat: Chat; agents: ChatAgent[] }) {
  const update = useUpdateParticipants();
  const [draft, setDraft] = useState<Participants | null>(null);
  const current: Participants = { agentIds: chat.agent_ids, mode: chat.mode };
  const participants = participantsOf(chat.agent_ids, agents);
  // Agents the person may add, and any participant no longer among them (it keeps its place).
  const choices = [...agents, ...participants.filter((p) => !agents.some((a) => a.id === p.id))];
  const close = () => {
    setDraft(null);
    update.reset();
  };
  const mode = MODES.find((option) => option.id === chat.mode);

  return (
    <>
      <button type="button" className="participants-summary" onClick={() => setDraft(current)} aria-label="Edit participants" data-testid="participants-summary">
        <span className="participants-summary__avatars">
          {participants.map((agent) => (
            <AgentAvatar key={agent.id} agent={agent} size="sm" />
          ))}
        </span>
        <span className="participants-summary__names muted small">
          {participants.length === 1 && participants[0]?.model ? `${participants[0].name} · ${participants[0].model}` : participants.map((agent) => agent.name).join(", ")}
        </span>
        {participants.length > 1 || chat.mode !== "direct" ? <span className="badge badge--accent">{mode?.label ?? chat.mode}</span> : null}
      </button>
      <Dialog open={draft !== null} title="Participants" onClose={close} wide>
        {draft ? (
          <form
            className="form"
            onSubmit={(event) => {
              event.preventDefault();
              update.mutate({ id: chat.id, agent_ids: draft.agentIds, mode: draft.mode }, { onSuccess: close });
            }}
          >
            <p className="muted small">The first agent is the default: it answers in a direct chat and orchestrates the others.</p>
            <ParticipantsPicker name="participants" agents={choices} value={draft} onChange={setDraft} />
            {multiAgentRefusal(update.error) ? <PlanGateNotice error={update.error} /> : <ErrorAlert error={update.error} />}
            <div className="form-actions">
              <Button variant="secondary" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" loading={update.isPending} disabled={same(draft, current)}>
                Save participants
              </Button>
            </div>
          </form>
        ) : null}
      </Dialog>
    </>
  );
}
