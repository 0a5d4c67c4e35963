import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/billing";

export type BillingConfig = components["schemas"]["BillingConfigRead"];

/** GET /billing/config: whether plans are paid through Stripe, and which. */
export function getBillingConfig(): Promise<BillingConfig> {
  return apiRequest<BillingConfig>("/billing/config");
}

export function useBillingConfig() {
  // Changes only with a deployment.
  return useQuery({ queryKey: ["billing", "config"], queryFn: getBillingConfig, staleTime: 5 * 60_000 });
}
