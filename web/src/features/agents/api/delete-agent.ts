import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { agentsQueryKey } from "./get-my-agents";

/** DELETE /agents/{id}. */
export function deleteAgent(id: string): Promise<undefined> {
  return apiRequest<undefined>(`/agents/${encodeURIComponent(id)}`, { method: "DELETE" });
}

export function useDeleteAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: deleteAgent,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: agentsQueryKey }),
  });
}
