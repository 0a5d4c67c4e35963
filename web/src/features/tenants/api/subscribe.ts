import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

/** POST /tenants/subscribe {plan}: owners/admins change the plan; it applies at once. */
export function subscribe(plan: string): Promise<unknown> {
  return apiRequest<unknown>("/tenants/subscribe", { method: "POST", body: { plan } });
}

export function useSubscribe() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: subscribe,
    // Limits show up in the plan, the profile's subscription and the providers list: refetch all.
    onSuccess: () => queryClient.invalidateQueries(),
  });
}
