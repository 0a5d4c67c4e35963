import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/billing";

export type BillingSubscription = components["schemas"]["SubscriptionRead"];

/** GET /billing/subscription: the plan the organisation pays for, as Stripe last said. */
export function getSubscription(): Promise<BillingSubscription> {
  return apiRequest<BillingSubscription>("/billing/subscription");
}

export function useSubscription(enabled: boolean) {
  // Fresh on every visit: coming back from Checkout or the portal changes it.
  return useQuery({ queryKey: ["billing", "subscription"], queryFn: getSubscription, enabled, staleTime: 0 });
}
