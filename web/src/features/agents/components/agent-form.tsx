import { type FormEvent, useMemo, useState } from "react";
import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { SelectField, TextAreaField, TextField } from "@/components/ui/field";
import { LoadingState } from "@/components/ui/spinner";
import { fieldErrors } from "@/lib/api-error";
import { safeUrl } from "@/lib/safe-url";
import { type AgentInput, type LlmProvider, useCreateAgent } from "../api/create-agent";
import type { Agent } from "../api/get-my-agents";
import { useProviders } from "../api/get-providers";
import { useUpdateAgent } from "../api/update-agent";
import { CollectionPicker } from "./collection-picker";

// Fields that show the service's message for them under themselves.
const FIELDS_WITH_ERRORS = ["name", "model", "base_url", "api_key"];
const DEFAULT_INSTRUCTIONS = "You are a helpful assistant. Answer clearly and concisely.";

/** Create or edit an agent: provider, a model the plan allows, instructions, temperature. */
export function AgentForm({ agent, onDone }: { agent?: Agent; onDone: (agent: Agent) => void }) {
  const providers = useProviders();
  const create = useCreateAgent();
  const update = useUpdateAgent();
  const mutation = agent ? update : create;

  const [name, setName] = useState(agent?.name ?? "");
  const [provider, setProvider] = useState(agent?.llm_provider ?? "");
  const [model, setModel] = useState(agent?.model ?? "");
  const [instructions, setInstructions] = useState(agent?.instructions ?? DEFAULT_INSTRUCTIONS);
  const [temperature, setTemperature] = useState(agent?.temperature ?? 0.7);
  const [baseUrl, setBaseUrl] = useState(agent?.base_url ?? "");
  const [apiKey, setApiKey] = useState("");
  const [collectionIds, setCollectionIds] = useState<string[]>(agent?.knowledge_collection_ids ?? []);

  const providerList = useMemo(() => providers.data ?? [], [providers.data]);
  const selectedProvider = providerList.find((p) => p.id === provider) ?? providerList.find((p) => p.allowed) ?? providerList[0];
  const effectiveProvider = provider || selectedProvider?.id || "";
  const allowedModels = selectedProvider?.models.filter((m) => m.allowed) ?? [];
  const effectiveModel = model || allowedModels[0]?.id || "";
  // The service's per-field answers go next to their fields; only the rest goes in the alert above.
  const serverErrors = fieldErrors(mutation.error);
  const unplacedErrors = Object.keys(serverErrors).filter((field) => !FIELDS_WITH_ERRORS.includes(field));
  const problemNotAtFields = Boolean(mutation.error) && (Object.keys(serverErrors).length === 0 || unplacedErrors.length > 0);
  const baseUrlError = effectiveProvider === "custom" && baseUrl && !safeUrl(baseUrl) ? "Use an http(s) address." : (serverErrors.base_url ?? null);
  const createBlockedBecause = !name.trim() ? "Give the agent a name first." : !effectiveModel.trim() ? "Your plan allows no model of this provider: pick another provider." : null;

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (baseUrlError) return;
    const input: AgentInput = {
      name: name.trim(),
      // An id from the providers catalogue (typed as a plain string there); the service validates it.
      llm_provider: effectiveProvider as LlmProvider,
      model: effectiveModel.trim(),
      instructions,
      temperature,
    };
    if (effectiveProvider === "custom" && baseUrl.trim()) input.base_url = baseUrl.trim();
    if (apiKey.trim()) input.api_key = apiKey.trim();
    if (collectionIds.length > 0 || agent?.knowledge_collection_ids.length) input.knowledge_collection_ids = collectionIds;
    if (agent) update.mutate({ id: agent.id, ...input }, { onSuccess: onDone });
    else create.mutate(input, { onSuccess: onDone });
  };

  if (providers.isPending) return <LoadingState label="Loading providers…" />;
  if (providers.error) return <ErrorAlert error={providers.error} onRetry={() => void providers.refetch()} />;

  return (
    <form className="form" onSubmit={onSubmit}>
      {problemNotAtFields ? (
        <ErrorAlert
          error={mutation.error}
          upgradeAction={
            <Link className="btn btn--primary btn--sm" to="/settings#plans">
              See plans
            </Link>
          }
        />
      ) : null}
      <TextField label="Name" name="name" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Support assistant" autoFocus error={serverErrors.name} />
      {/* One field per row: the dialog is narrow, and a half-width select cuts its options off. */}
      <div className="form-stack">
        <SelectField
          label="Provider"
          name="llm_provider"
          value={effectiveProvider}
          onChange={(e) => {
            setProvider(e.target.value);
            setModel("");
          }}
        >
          {providerList.map((p) => (
            <option key={p.id} value={p.id} disabled={!p.allowed}>
              {p.label}
              {p.allowed ? "" : " (upgrade to use)"}
            </option>
          ))}
        </SelectField>
        {selectedProvider?.any_model ? (
          <TextField label="Model" name="model" required value={model} onChange={(e) => setModel(e.target.value)} placeholder="e.g. llama3.1" error={serverErrors.model} />
        ) : (
          <SelectField label="Model" name="model" value={effectiveModel} onChange={(e) => setModel(e.target.value)} hint={allowedModels.length === 0 ? "Your plan allows no model of this provider." : undefined}>
            {selectedProvider?.models.map((m) => (
              <option key={m.id} value={m.id} disabled={!m.allowed}>
                {m.id}
                {m.allowed ? "" : " (upgrade to use)"}
              </option>
            ))}
          </SelectField>
        )}
      </div>
      {selectedProvider?.accepts.includes("base_url") ? (
        <TextField label="Base URL" name="base_url" type="url" required value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} placeholder="https://llm.example.com/v1" error={baseUrlError} />
      ) : null}
      {selectedProvider?.accepts.includes("api_key") ? (
        <TextField
          label="API key"
          name="api_key"
          type="password"
          autoComplete="off"
          value={apiKey}
          onChange={(e) => setApiKey(e.target.value)}
          error={serverErrors.api_key}
          required={!agent && !selectedProvider.configured && effectiveProvider !== "custom"}
          hint={
            agent
              ? "Leave empty to keep the stored key. Keys are stored encrypted and never shown again."
              : selectedProvider.configured
                ? "Optional: bring your own key. Stored encrypted, never shown again."
                : "This deployment has no key for this provider: bring your own. Stored encrypted, never shown again."
          }
        />
      ) : null}
      <TextAreaField label="Instructions" name="instructions" rows={5} maxLength={8000} value={instructions} onChange={(e) => setInstructions(e.target.value)} hint="The system prompt the agent follows in every chat." />
      <div className="field">
        <label className="field__label" htmlFor="agent-temperature">
          Temperature <span className="muted">{temperature.toFixed(1)}</span>
        </label>
        <input id="agent-temperature" className="range" type="range" min={0} max={2} step={0.1} value={temperature} onChange={(e) => setTemperature(Number(e.target.value))} />
        <p className="field__hint">Lower is focused and repeatable, higher is more creative.</p>
      </div>
      <CollectionPicker value={collectionIds} onChange={setCollectionIds} />
      <div className="form-actions">
        {createBlockedBecause ? (
          <p className="field__hint" id="agent-submit-hint">
            {createBlockedBecause}
          </p>
        ) : null}
        <Button type="submit" loading={mutation.isPending} disabled={Boolean(createBlockedBecause)} aria-describedby={createBlockedBecause ? "agent-submit-hint" : undefined}>
          {agent ? "Save changes" : "Create agent"}
        </Button>
      </div>
    </form>
  );
}
