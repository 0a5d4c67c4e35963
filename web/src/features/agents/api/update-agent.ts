import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";
import { type Agent, agentsQueryKey } from "./get-my-agents";

export type AgentUpdate = components["schemas"]["AgentUpdate"];

/** PATCH /agents/{id}: only the fields sent change (an empty api_key keeps the stored one). */
export function updateAgent({ id, ...changes }: AgentUpdate & { id: string }): Promise<Agent> {
  return apiRequest<Agent>(`/agents/${encodeURIComponent(id)}`, { method: "PATCH", body: changes });
}

export function useUpdateAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: updateAgent,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: agentsQueryKey }),
  });
}
