import { queryOptions, useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/tenants";

type Schemas = components["schemas"];

/**
 * The plan limits object owned by the tenants service. Its OpenAPI types `limits` as a free-form
 * object (`dict[str, Any]`), so this shape is written by hand after the agreed contract.
 */
export interface PlanLimits {
  requests_per_minute: number;
  messages_per_day: number;
  agents: number;
  tokens_per_month: number;
  models: string[];
}

export type Usage = Schemas["UsageRead"];
export type Meter = Schemas["MeterRead"];

/** GET /tenants/plan: the tenant's plan, limits, features and usage. */
export type TenantPlan = Omit<Schemas["TenantPlanRead"], "limits"> & { limits: PlanLimits };

export const planQueryKey = ["tenants", "plan"] as const;

export function getPlan(): Promise<TenantPlan> {
  return apiRequest<TenantPlan>("/tenants/plan");
}

export function planQueryOptions() {
  return queryOptions({ queryKey: planQueryKey, queryFn: getPlan });
}

export function usePlan() {
  return useQuery(planQueryOptions());
}
