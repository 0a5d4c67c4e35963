/** A chat's participants and modes as the web app shows them (the rules live in the chat service). */
import type { Chat } from "./api/types";

export type ChatMode = Chat["mode"];

/** An agent as the chat pages need it. */
export interface ChatAgent {
  id: string;
  name: string;
  model: string;
}

// Mirrors the chat service's bound: a chat has 1 to 8 agents.
export const MAX_PARTICIPANTS = 8;

export const MODES: { id: ChatMode; label: string; explanation: string }[] = [
  { id: "direct", label: "Direct", explanation: "The default agent answers; @Name asks another participant instead." },
  { id: "panel", label: "Panel", explanation: "Every agent answers in turn, each reading the replies before it." },
  { id: "orchestrated", label: "Orchestrated", explanation: "The default agent consults the others, then writes the answer." },
];

/** How a message names an agent: its name without spaces (`@CodeReviewer` for "Code Reviewer"). */
export function handleOf(name: string): string {
  return name.split(/\s+/).join("");
}

/** More than one agent, or a mode other than direct, needs the plan feature `multi_agent`. */
export function needsMultiAgent(agentIds: string[], mode: ChatMode): boolean {
  return agentIds.length > 1 || mode !== "direct";
}

/** The chat's agents in its order, the default first; an agent since deleted keeps its place, unnamed. */
export function participantsOf(agentIds: string[], agents: ChatAgent[]): ChatAgent[] {
  return agentIds.map((id) => agents.find((agent) => agent.id === id) ?? { id, name: "Removed agent", model: "" });
}
