import { type FormEvent, useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { SelectField, TextField } from "@/components/ui/field";
import { LoadingState } from "@/components/ui/spinner";
import { formatDateTime, formatRelativeTime } from "@/lib/format";
import { type ApiKeyCreated, useCreateApiKey } from "../api/create-api-key";
import { type ApiKey, type ApiKeyScope, useApiKeys } from "../api/get-api-keys";
import { useRevokeApiKey } from "../api/revoke-api-key";

const EXPIRY_CHOICES = [
  { days: 0, label: "Never" },
  { days: 30, label: "In 30 days" },
  { days: 90, label: "In 90 days" },
  { days: 365, label: "In a year" },
];

function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      variant="secondary"
      size="sm"
      aria-label={label}
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => setCopied(true));
      }}
    >
      {copied ? "Copied" : "Copy"}
    </Button>
  );
}

function NewKey({ created }: { created: ApiKeyCreated }) {
  return (
    <div className="invite__code" data-testid="new-api-key">
      <code>{created.key}</code>
      <CopyButton text={created.key} label="Copy the API key" />
      <span className="muted">Copy it now: it is shown only this once.</span>
    </div>
  );
}

function CreateKeyForm() {
  const create = useCreateApiKey();
  const [name, setName] = useState("");
  const [days, setDays] = useState(0);
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const expiresAt = days ? new Date(Date.now() + days * 86_400_000).toISOString() : null;
    create.mutate({ name: name.trim(), expires_at: expiresAt }, { onSuccess: () => setName("") });
  };
  return (
    <form className="invite" onSubmit={onSubmit}>
      <div className="invite__row">
        <TextField label="Key name" name="api-key-name" value={name} maxLength={100} required placeholder="e.g. CI pipeline" onChange={(e) => setName(e.target.value)} />
        <SelectField label="Expires" name="api-key-expiry" value={days} onChange={(e) => setDays(Number(e.target.value))}>
          {EXPIRY_CHOICES.map((choice) => (
            <option key={choice.days} value={choice.days}>
              {choice.label}
            </option>
          ))}
        </SelectField>
        <Button type="submit" loading={create.isPending} disabled={!name.trim()}>
          Create key
        </Button>
      </div>
      {create.error ? <ErrorAlert error={create.error} /> : null}
      {create.data ? <NewKey created={create.data} /> : null}
    </form>
  );
}

function KeyRow({ apiKey, showOwner, now }: { apiKey: ApiKey; showOwner: boolean; now: number }) {
  const revoke = useRevokeApiKey();
  const expired = apiKey.expires_at !== null && new Date(apiKey.expires_at).getTime() < now;
  return (
    <tr>
      <td>
        <div className="table__primary">{apiKey.name}</div>
        <code className="muted">{apiKey.prefix}…</code>
      </td>
      {showOwner ? <td className="muted">{apiKey.user_email}</td> : null}
      <td className="muted">{formatRelativeTime(apiKey.created_at)}</td>
      <td className="muted">{apiKey.last_used_at ? formatRelativeTime(apiKey.last_used_at) : "Never"}</td>
      <td>{expired ? <Badge tone="danger">expired</Badge> : <span className="muted">{apiKey.expires_at ? formatDateTime(apiKey.expires_at) : "Never"}</span>}</td>
      <td>
        <Button
          variant="secondary"
          size="sm"
          loading={revoke.isPending}
          aria-label={`Revoke ${apiKey.name}`}
          onClick={() => {
            if (window.confirm(`Revoke "${apiKey.name}"? Anything using it stops working at once.`)) revoke.mutate(apiKey.id);
          }}
        >
          Revoke
        </Button>
        {revoke.error ? <ErrorAlert error={revoke.error} /> : null}
      </td>
    </tr>
  );
}

function KeyList({ scope }: { scope: ApiKeyScope }) {
  const keys = useApiKeys(scope);
  // When the page opened: what counts as expired does not flicker between renders.
  const [now] = useState(() => Date.now());
  if (keys.isPending) return <LoadingState label="Loading API keys…" />;
  if (keys.error) return <ErrorAlert error={keys.error} onRetry={() => void keys.refetch()} />;
  if (keys.data.items.length === 0) return <EmptyState title="No API keys yet" />;
  const showOwner = scope === "tenant";
  return (
    <div className="table-wrap">
      <table className="table" aria-label="API keys">
        <thead>
          <tr>
            <th scope="col">Key</th>
            {showOwner ? <th scope="col">Owner</th> : null}
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">Expires</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.data.items.map((apiKey) => (
            <KeyRow key={apiKey.id} apiKey={apiKey} showOwner={showOwner} now={now} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CodeSnippet() {
  const baseUrl = `${window.location.origin}/v1`;
  const snippet = [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${baseUrl}", api_key="kbz_…")`,
    'print([m.id for m in client.models.list()])  # your agents',
    "reply = client.chat.completions.create(",
    '    model="<agent id or name>",',
    '    messages=[{"role": "user", "content": "Hello!"}],',
    ")",
    "print(reply.choices[0].message.content)",
  ].join("\n");
  return (
    <div className="api-snippet">
      <p className="muted">
        Use your agents from code: any OpenAI-compatible client works with the base URL <code>{baseUrl}</code> and one of your keys. The model is an agent's id or name.
      </p>
      <pre data-testid="api-snippet">{snippet}</pre>
      <CopyButton text={snippet} label="Copy the code example" />
    </div>
  );
}

/** Personal API keys (create — shown once —, list, revoke) and how to use them from code. */
export function ApiKeysPanel({ canManage }: { canManage: boolean }) {
  const [scope, setScope] = useState<ApiKeyScope>("mine");
  return (
    <Card id="api-keys">
      <CardHeader
        title="API keys"
        description="Keys act as you, with your role, on the API and the OpenAI-compatible endpoint. Revoked keys stop working at once."
        action={
          canManage ? (
            <SelectField label="Show" name="api-key-scope" value={scope} onChange={(e) => setScope(e.target.value === "tenant" ? "tenant" : "mine")}>
              <option value="mine">My keys</option>
              <option value="tenant">Everyone's keys</option>
            </SelectField>
          ) : null
        }
      />
      <CreateKeyForm />
      <KeyList scope={scope} />
      <CodeSnippet />
    </Card>
  );
}
