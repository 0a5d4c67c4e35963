import { type ChatAgent, handleOf } from "../participants";
import { AgentAvatar } from "./agent-label";

export const MENTION_MENU_ID = "mention-menu";

export function mentionOptionId(agentId: string): string {
  return `mention-option-${agentId}`;
}

/** The participants an @mention being typed may name (a listbox the composer's textarea drives). */
export function MentionMenu({ options, active, onChoose, onHover }: { options: ChatAgent[]; active: number; onChoose: (agent: ChatAgent) => void; onHover: (index: number) => void }) {
  return (
    <ul className="mention-menu" id={MENTION_MENU_ID} role="listbox" aria-label="Mention an agent">
      {options.map((agent, index) => (
        <li
          key={agent.id}
          id={mentionOptionId(agent.id)}
          role="option"
          aria-selected={index === active}
          className={`mention-menu__option ${index === active ? "is-active" : ""}`}
          // mousedown, not click: the textarea keeps its focus and caret.
          onMouseDown={(event) => {
            event.preventDefault();
            onChoose(agent);
          }}
          onMouseEnter={() => onHover(index)}
        >
          <AgentAvatar agent={agent} size="sm" />
          <span className="mention-menu__handle">@{handleOf(agent.name)}</span>
          {handleOf(agent.name) !== agent.name ? <span className="muted small">{agent.name}</span> : null}
        </li>
      ))}
    </ul>
  );
}
