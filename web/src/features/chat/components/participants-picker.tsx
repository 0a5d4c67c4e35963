import { Button } from "@/components/ui/button";
import { type ChatAgent, type ChatMode, MAX_PARTICIPANTS, MODES } from "../participants";
import { AgentAvatar } from "./agent-label";

export interface Participants {
  agentIds: string[];
  mode: ChatMode;
}

function moved(ids: string[], from: number, to: number): string[] {
  const next = ids.slice();
  const [id] = next.splice(from, 1);
  if (id !== undefined) next.splice(to, 0, id);
  return next;
}

/**
 * Who is in a chat and how they answer: the default agent (a radio card each), others added
 * beside it (checkboxes), their order (the first is the default) and the mode. Controlled: used
 * by the new-chat page and the chat header's participants editor alike.
 */
export function ParticipantsPicker({ agents, value, onChange, name }: { agents: ChatAgent[]; value: Participants; onChange: (value: Participants) => void; name: string }) {
  const { agentIds, mode } = value;
  const defaultId = agentIds[0];
  const change = (ids: string[], nextMode: ChatMode = mode) => onChange({ agentIds: ids, mode: ids.length > 1 ? nextMode : "direct" });
  const chooseDefault = (id: string) => change(agentIds.includes(id) ? [id, ...agentIds.filter((other) => other !== id)] : [id, ...agentIds.slice(1)]);
  const toggle = (id: string) => change(agentIds.includes(id) ? agentIds.filter((other) => other !== id) : [...agentIds, id]);
  const others = agents.filter((agent) => agent.id !== defaultId);
  const full = agentIds.length >= MAX_PARTICIPANTS;
  const byId = new Map(agents.map((agent) => [agent.id, agent]));

  return (
    <div className="participants-picker">
      <div className="agent-picker" role="radiogroup" aria-label="Agent">
        {agents.map((option) => (
          <label key={option.id} className={`agent-picker__option ${option.id === defaultId ? "is-selected" : ""}`}>
            <input type="radio" name={`${name}-default`} value={option.id} checked={option.id === defaultId} onChange={() => chooseDefault(option.id)} />
            <AgentAvatar agent={option} />
            <span className="agent-picker__text">
              <span className="agent-picker__name">{option.name}</span>
              <span className="muted small">{option.model}</span>
            </span>
          </label>
        ))}
      </div>
      {others.length > 0 ? (
        <fieldset className="participants-picker__others">
          <legend className="small">Also in this chat</legend>
          <div className="participants-picker__chips">
            {others.map((option) => {
              const checked = agentIds.includes(option.id);
              return (
                <label key={option.id} className={`chip ${checked ? "is-selected" : ""}`}>
                  <input type="checkbox" checked={checked} disabled={!checked && full} onChange={() => toggle(option.id)} aria-label={`Add ${option.name}`} />
                  <AgentAvatar agent={option} size="sm" />
                  {option.name}
                </label>
              );
            })}
          </div>
        </fieldset>
      ) : null}
      {agentIds.length > 1 ? (
        <>
          <ol className="participants-picker__order" aria-label="Participants in order">
            {agentIds.map((id, index) => {
              const agent = byId.get(id) ?? { id, name: "Removed agent", model: "" };
              return (
                <li key={id} className="participants-picker__row" data-testid="participant">
                  <AgentAvatar agent={agent} size="sm" />
                  <span className="participants-picker__name">{agent.name}</span>
                  {index === 0 ? <span className="badge badge--accent">Default</span> : null}
                  <span className="participants-picker__actions">
                    {index > 0 ? (
                      <Button variant="ghost" size="sm" onClick={() => change(moved(agentIds, index, 0))} aria-label={`Make ${agent.name} the default`}>
                        Make default
                      </Button>
                    ) : null}
                    <Button variant="ghost" size="sm" disabled={index === 0} onClick={() => change(moved(agentIds, index, index - 1))} aria-label={`Move ${agent.name} up`}>
                      ↑
                    </Button>
                    <Button variant="ghost" size="sm" disabled={index === agentIds.length - 1} onClick={() => change(moved(agentIds, index, index + 1))} aria-label={`Move ${agent.name} down`}>
                      ↓
                    </Button>
                    <Button variant="ghost" size="sm" onClick={() => change(agentIds.filter((other) => other !== id))} aria-label={`Remove ${agent.name}`}>
                      ×
                    </Button>
                  </span>
                </li>
              );
            })}
          </ol>
          <div className="mode-picker" role="radiogroup" aria-label="Mode">
            {MODES.map((option) => (
              <label key={option.id} className={`mode-picker__option ${option.id === mode ? "is-selected" : ""}`}>
                <input type="radio" name={`${name}-mode`} value={option.id} checked={option.id === mode} onChange={() => change(agentIds, option.id)} />
                <span className="mode-picker__label">{option.label}</span>
                <span className="muted small">{option.explanation}</span>
              </label>
            ))}
          </div>
        </>
      ) : null}
    </div>
  );
}
