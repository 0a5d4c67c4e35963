import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

/** An agent as the agents service returns it (the API key is never returned). */
export interface Agent {
  id: string;
  user_id: string;
  tenant_id?: string;
  name: string;
  llm_provider: "openai" | "anthropic" | "custom" | "echo" | string;
  model: string;
  instructions: string;
  temperature: number | null;
  base_url?: string | null;
  has_api_key?: boolean;
  created_at: string;
  updated_at?: string;
}

export const agentsQueryKey = ["agents", "my"] as const;

/** GET /agents/my. */
export function getMyAgents(): Promise<{ items: Agent[] }> {
  return apiRequest<{ items: Agent[] }>("/agents/my");
}

export function useMyAgents() {
  return useQuery({ queryKey: agentsQueryKey, queryFn: getMyAgents });
}
