import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/tenants";
import type { PlanLimits } from "./get-plan";

type Schemas = components["schemas"];

/** One plan of the catalogue (`limits` typed by hand: the OpenAPI has it as a free-form object). */
export type PlanOffer = Omit<Schemas["CataloguePlanRead"], "limits"> & { limits: PlanLimits };
export type Catalogue = Omit<Schemas["CatalogueRead"], "items"> & { items: PlanOffer[] };

/** GET /tenants/plans: the operator's plan catalogue. */
export function getPlans(): Promise<Catalogue> {
  return apiRequest<Catalogue>("/tenants/plans");
}

export function usePlans() {
  return useQuery({ queryKey: ["tenants", "plans"], queryFn: getPlans, staleTime: 5 * 60_000 });
}
