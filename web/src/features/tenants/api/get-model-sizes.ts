import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";

type ProviderCatalogue = components["schemas"]["ProviderCatalogue"];

/** Model ids by size class ("echo", "small", "large"), from what this deployment offers. */
export type ModelsBySize = Record<string, string[]>;

/** GET /agents/providers, grouped by size: plans name sizes, people need the models. */
export function getModelsBySize(): Promise<ModelsBySize> {
  return apiRequest<ProviderCatalogue>("/agents/providers").then((catalogue) => {
    const bySize: ModelsBySize = {};
    for (const provider of catalogue.items) {
      for (const model of provider.models) (bySize[model.size] ??= []).push(model.id);
    }
    return bySize;
  });
}

export function useModelsBySize() {
  return useQuery({ queryKey: ["tenants", "models-by-size"], queryFn: getModelsBySize, staleTime: 5 * 60_000 });
}
