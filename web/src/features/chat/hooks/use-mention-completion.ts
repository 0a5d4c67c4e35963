import { type KeyboardEvent, useState } from "react";
import { type ChatAgent, handleOf } from "../participants";

// `@` at the start of a word (not inside an email address), then the handle typed so far, up to
// the caret. The same rule as the chat service's mention parser.
const MENTION_AT_CARET = /(?:^|[^\w@])@([\w-]*)$/;

export interface MentionQuery {
  /** Where the `@` is in the text. */
  start: number;
  query: string;
}

/** The @mention being typed just before the caret, if any. */
export function mentionAt(text: string, caret: number): MentionQuery | null {
  const match = MENTION_AT_CARET.exec(text.slice(0, caret));
  if (!match) return null;
  const query = match[1] ?? "";
  return { start: caret - query.length - 1, query };
}

/**
 * @mention completion for the composer: the participants whose handle starts with what is typed
 * after `@`; arrows move, Enter or Tab completes, Escape closes.
 */
export function useMentionCompletion({
  agents,
  value,
  caret,
  setValue,
}: {
  agents: ChatAgent[];
  value: string;
  caret: number;
  setValue: (value: string, caret: number) => void;
}) {
  const [active, setActive] = useState(0);
  // The `@` position the person dismissed with Escape: stays closed until they type another.
  const [dismissedAt, setDismissedAt] = useState<number | null>(null);
  const mention = agents.length > 0 ? mentionAt(value, caret) : null;
  const query = mention?.query.toLowerCase() ?? "";
  const options = mention ? agents.filter((agent) => handleOf(agent.name).toLowerCase().startsWith(query)) : [];
  const open = Boolean(mention) && options.length > 0 && dismissedAt !== mention?.start;
  const current = open ? Math.min(active, options.length - 1) : -1;

  const choose = (agent: ChatAgent) => {
    if (!mention) return;
    const inserted = `@${handleOf(agent.name)} `;
    const rest = value.slice(caret).replace(/^[\w-]*\s?/, "");
    setValue(value.slice(0, mention.start) + inserted + rest, mention.start + inserted.length);
    setActive(0);
  };

  /** Handles the key when the menu is open; returns whether it did (the composer then does nothing). */
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>): boolean => {
    if (!open || !mention) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      setActive((current + step + options.length) % options.length);
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      const agent = options[current];
      if (agent) choose(agent);
    } else if (event.key === "Escape") {
      setDismissedAt(mention.start);
    } else {
      return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  };

  return { open, options, active: current, choose, onKeyDown, setActive };
}
