import { type FormEvent, useState } from "react";
import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { TextField } from "@/components/ui/field";
import { LoadingState } from "@/components/ui/spinner";
import { type TenantSso, useRemoveTenantSso, useSaveTenantSso, useTenantSso } from "../api/tenant-sso";

function domainsOf(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((domain) => domain.trim().toLowerCase())
    .filter(Boolean);
}

/** The organisation's own identity provider (owners only): issuer, client, domains, enforcement. */
export function TenantSsoSettings() {
  const current = useTenantSso(true);
  if (current.isPending) return <LoadingState label="Loading single sign-on…" />;
  if (current.error) return <ErrorAlert error={current.error} onRetry={() => void current.refetch()} />;
  return <TenantSsoForm key={current.data?.id ?? "new"} current={current.data} />;
}

function TenantSsoForm({ current }: { current: TenantSso | null }) {
  const save = useSaveTenantSso();
  const remove = useRemoveTenantSso();
  const [issuer, setIssuer] = useState(current?.issuer ?? "");
  const [clientId, setClientId] = useState(current?.client_id ?? "");
  const [clientSecret, setClientSecret] = useState("");
  const [domains, setDomains] = useState((current?.domains ?? []).join(", "));
  const [enforce, setEnforce] = useState(current?.enforce ?? false);

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate({
      issuer: issuer.trim(),
      client_id: clientId.trim(),
      client_secret: clientSecret ? clientSecret : undefined,
      domains: domainsOf(domains),
      enforce,
    });
    setClientSecret("");
  };

  return (
    <Card>
      <CardHeader
        title="Single sign-on"
        description="Let your people sign in with your company's OpenID Connect provider (Okta, Microsoft Entra, Google Workspace, Keycloak…)."
      />
      <form className="form form--wide" onSubmit={onSubmit} aria-label="Single sign-on settings">
        {save.error ? <ErrorAlert error={save.error} title="Could not save single sign-on" /> : null}
        {remove.error ? <ErrorAlert error={remove.error} /> : null}
        {save.isSuccess ? <Alert tone="success">Single sign-on saved.</Alert> : null}
        {current ? (
          <Alert title="Callback URL">
            Register <code>{current.redirect_uri}</code> as the redirect URI of kibitz's client at your provider.
          </Alert>
        ) : null}
        <div className="form-grid">
          <TextField label="Issuer URL" name="issuer" type="url" required value={issuer} onChange={(e) => setIssuer(e.target.value)} placeholder="https://login.example.com" />
          <TextField label="Client ID" name="client_id" required value={clientId} onChange={(e) => setClientId(e.target.value)} autoComplete="off" />
          <TextField
            label="Client secret"
            name="client_secret"
            type="password"
            required={!current}
            value={clientSecret}
            onChange={(e) => setClientSecret(e.target.value)}
            autoComplete="new-password"
            hint={current ? "Stored encrypted. Leave empty to keep it." : "Stored encrypted, never shown again."}
          />
          <TextField
            label="Email domains"
            name="domains"
            value={domains}
            onChange={(e) => setDomains(e.target.value)}
            placeholder="example.com, example.org"
            hint="People with these email addresses are offered your provider."
          />
        </div>
        <label className="checkbox">
          <input type="checkbox" name="enforce" checked={enforce} onChange={(e) => setEnforce(e.target.checked)} />
          <span>Require single sign-on: your people with these domains cannot sign in or register with a password.</span>
        </label>
        <div className="form-actions">
          <Button type="submit" loading={save.isPending}>
            Save single sign-on
          </Button>
          {current ? (
            <Button variant="danger" loading={remove.isPending} onClick={() => remove.mutate()}>
              Remove
            </Button>
          ) : null}
        </div>
      </form>
    </Card>
  );
}
