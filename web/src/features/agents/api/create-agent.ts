import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type Agent, agentsQueryKey } from "./get-my-agents";

export interface AgentInput {
  name: string;
  llm_provider: string;
  model: string;
  instructions: string;
  temperature?: number;
  base_url?: string;
  api_key?: string;
}

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
