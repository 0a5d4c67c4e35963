import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

export interface ModelOption {
  id: string;
  label: string;
  allowed: boolean;
}

export interface ProviderOption {
  id: string;
  label: string;
  models: ModelOption[];
  /** custom endpoints accept any model name */
  freeModel: boolean;
  /** the plan allows at least one model of it */
  allowed: boolean;
  /** the deployment has its own key; otherwise the user must bring one */
  configured: boolean;
  /** fields a user may supply: api_key, base_url */
  accepts: string[];
  demo: boolean;
}

type RawModel = string | { id?: string; name?: string; model?: string; label?: string; allowed?: boolean };
type RawProvider = {
  id?: string;
  name?: string;
  provider?: string;
  label?: string;
  models?: RawModel[];
  allowed_models?: string[];
  allowed?: boolean;
  configured?: boolean;
  accepts?: string[];
  any_model?: boolean;
  demo?: boolean;
};
type RawAnswer = RawProvider[] | { items?: RawProvider[]; providers?: RawProvider[] | Record<string, RawModel[]> };

const PROVIDER_LABELS: Record<string, string> = { openai: "OpenAI", anthropic: "Anthropic", custom: "Custom (OpenAI-compatible)", echo: "Echo (offline demo)" };

function normaliseModel(raw: RawModel): ModelOption | null {
  if (typeof raw === "string") return { id: raw, label: raw, allowed: true };
  const id = raw.id ?? raw.model ?? raw.name;
  return id ? { id, label: raw.label ?? id, allowed: raw.allowed ?? true } : null;
}

/** Accept the few shapes a providers listing can reasonably have and give one back. */
export function normaliseProviders(answer: RawAnswer): ProviderOption[] {
  let list: RawProvider[] = [];
  if (Array.isArray(answer)) list = answer;
  else if (Array.isArray(answer.items)) list = answer.items;
  else if (Array.isArray(answer.providers)) list = answer.providers;
  else if (answer.providers && typeof answer.providers === "object") {
    list = Object.entries(answer.providers).map(([id, models]) => ({ id, models }));
  }
  return list
    .map((raw): ProviderOption | null => {
      const id = raw.id ?? raw.provider ?? raw.name;
      if (!id) return null;
      const models = (raw.models ?? raw.allowed_models ?? []).map(normaliseModel).filter((m): m is ModelOption => m !== null);
      return {
        id,
        label: raw.label ?? PROVIDER_LABELS[id] ?? id,
        models,
        freeModel: raw.any_model ?? id === "custom",
        allowed: raw.allowed ?? models.some((m) => m.allowed),
        configured: raw.configured ?? true,
        accepts: raw.accepts ?? [],
        demo: raw.demo ?? id === "echo",
      };
    })
    .filter((p): p is ProviderOption => p !== null);
}

/** GET /agents/providers: providers and models this deployment offers and the plan allows. */
export function getProviders(): Promise<ProviderOption[]> {
  return apiRequest<RawAnswer>("/agents/providers").then(normaliseProviders);
}

export function useProviders() {
  return useQuery({ queryKey: ["agents", "providers"], queryFn: getProviders, staleTime: 5 * 60_000 });
}

export function providerLabel(id: string): string {
  return PROVIDER_LABELS[id] ?? id;
}
