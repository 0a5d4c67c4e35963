import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/tenants";
import type { TenantPlan } from "./get-plan";

/** POST /tenants/subscribe {plan}: owners/admins change the plan; it applies at once. */
export function subscribe(plan: string): Promise<TenantPlan> {
  const body: components["schemas"]["SubscribeRequest"] = { plan };
  return apiRequest<TenantPlan>("/tenants/subscribe", { method: "POST", body });
}

export function useSubscribe() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: subscribe,
    // Limits show up in the plan, the profile's subscription and the providers list: refetch all.
    onSuccess: () => queryClient.invalidateQueries(),
  });
}
