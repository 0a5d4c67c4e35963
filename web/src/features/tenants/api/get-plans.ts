import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { PlanLimits } from "./get-plan";

export interface PlanOffer {
  id: string;
  name: string;
  limits: PlanLimits;
  features: string[];
  price?: number | string | null;
}

/** GET /tenants/plans: the operator's plan catalogue. */
export function getPlans(): Promise<{ items: PlanOffer[] }> {
  return apiRequest<{ items: PlanOffer[] }>("/tenants/plans");
}

export function usePlans() {
  return useQuery({ queryKey: ["tenants", "plans"], queryFn: getPlans, staleTime: 5 * 60_000 });
}
