import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/agents";

/** The providers and models this deployment offers, each marked with whether the plan allows it. */
export type ProviderCatalogue = components["schemas"]["ProviderCatalogue"];
/** `any_model`: custom endpoints accept any model name; `configured`: the deployment has its own key. */
export type ProviderOption = components["schemas"]["ProviderOption"];
export type ModelOption = components["schemas"]["ModelOption"];

const PROVIDER_LABELS: Record<string, string> = { openai: "OpenAI", anthropic: "Anthropic", custom: "Custom (OpenAI-compatible)", echo: "Echo (offline demo)" };

/** GET /agents/providers: providers and models this deployment offers and the plan allows. */
export function getProviders(): Promise<ProviderOption[]> {
  return apiRequest<ProviderCatalogue>("/agents/providers").then((catalogue) => catalogue.items);
}

export function useProviders() {
  return useQuery({ queryKey: ["agents", "providers"], queryFn: getProviders, staleTime: 5 * 60_000 });
}

export function providerLabel(id: string): string {
  return PROVIDER_LABELS[id] ?? id;
}
