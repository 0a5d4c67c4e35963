import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

export interface AgentReply {
  content: string;
  model: string;
  finish_reason: string | null;
  usage: { input_tokens: number; output_tokens: number } | null;
}

/** POST /agents/respond without streaming: a quick try of an agent outside any chat. */
export function tryAgent({ agentId, prompt }: { agentId: string; prompt: string }): Promise<AgentReply> {
  return apiRequest<AgentReply>("/agents/respond", {
    method: "POST",
    body: { agent_id: agentId, messages: [{ role: "user", content: prompt }], stream: false },
  });
}

export function useTryAgent() {
  return useMutation({ mutationFn: tryAgent });
}
