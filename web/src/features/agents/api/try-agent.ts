import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";

export type AgentReply = components["schemas"]["RespondResult"];
type RespondRequest = components["schemas"]["RespondRequest"];

/** POST /agents/respond without streaming: a quick try of an agent outside any chat. */
export function tryAgent({ agentId, prompt }: { agentId: string; prompt: string }): Promise<AgentReply> {
  const body: RespondRequest = { agent_id: agentId, messages: [{ role: "user", content: prompt }], stream: false };
  return apiRequest<AgentReply>("/agents/respond", { method: "POST", body });
}

export function useTryAgent() {
  return useMutation({ mutationFn: tryAgent });
}
