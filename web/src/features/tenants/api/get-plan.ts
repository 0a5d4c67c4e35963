import { queryOptions, useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

/** The plan limits object owned by the tenants service. */
export interface PlanLimits {
  requests_per_minute: number;
  messages_per_day: number;
  agents: number;
  tokens_per_month: number;
  models: string[];
}

/** A usage counter may come as a number or as {used, limit, remaining}. */
export type UsageValue = number | { used?: number; count?: number; limit?: number | null; remaining?: number | null };

/** GET /tenants/plan (to be generated from the tenants service's OpenAPI). */
export interface TenantPlan {
  tenant_id: string;
  tenant_name: string;
  plan: string;
  limits: PlanLimits;
  features: string[];
  usage: Record<string, UsageValue> | null;
}

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

/** Read a counter whatever its name and shape (messages, messages_today, …). */
export function usageOf(usage: TenantPlan["usage"], names: string[]): number {
  for (const name of names) {
    const value = usage?.[name];
    if (typeof value === "number") return value;
    if (value && typeof value === "object") return value.used ?? value.count ?? 0;
  }
  return 0;
}
