import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";
import { type Agent, agentsQueryKey } from "./get-my-agents";

export type AgentInput = components["schemas"]["AgentCreate"];
export type LlmProvider = AgentInput["llm_provider"];

/** POST /agents/create: 403 when the plan does not allow the model or another agent. */
export function createAgent(input: AgentInput): Promise<Agent> {
  return apiRequest<Agent>("/agents/create", { method: "POST", body: input });
}

export function useCreateAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: createAgent,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: agentsQueryKey }),
  });
}
