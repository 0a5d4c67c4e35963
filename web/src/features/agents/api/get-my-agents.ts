import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";

/** An agent as the agents service returns it (the API key is never returned). */
export type Agent = components["schemas"]["AgentRead"];
export type AgentList = components["schemas"]["AgentList"];

export const agentsQueryKey = ["agents", "my"] as const;

/** GET /agents/my. */
export function getMyAgents(): Promise<AgentList> {
  return apiRequest<AgentList>("/agents/my");
}

export function useMyAgents() {
  return useQuery({ queryKey: agentsQueryKey, queryFn: getMyAgents });
}
