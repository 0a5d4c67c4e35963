import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Card, CardHeader } from "@/components/ui/card";
import { LockIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { useProviders } from "../api/get-providers";

/** Which models the tenant's plan allows, per provider. */
export function AllowedModels() {
  const providers = useProviders();
  const hasLocked = providers.data?.some((p) => p.models.some((m) => !m.allowed)) ?? false;
  return (
    <Card>
      <CardHeader title="Models on your plan" description="Providers this deployment offers and the models your plan allows." />
      {providers.isPending ? <LoadingState label="Loading models…" /> : null}
      {providers.error ? <ErrorAlert error={providers.error} onRetry={() => void providers.refetch()} /> : null}
      {providers.data ? (
        <dl className="models">
          {providers.data.map((provider) => (
            <div key={provider.id} className="models__row">
              <dt>
                {provider.label}
                {!provider.configured && provider.accepts.includes("api_key") ? <span className="muted small"> · bring your own key</span> : null}
              </dt>
              <dd>
                {provider.models.length === 0 ? <span className="muted">{provider.any_model ? "Any model your endpoint serves" : "None on your plan"}</span> : null}
                {provider.models.map((model) => (
                  <Badge key={model.id} tone={model.allowed ? "success" : "neutral"}>
                    {model.allowed ? null : <LockIcon size={11} />}
                    {model.id}
                  </Badge>
                ))}
              </dd>
            </div>
          ))}
        </dl>
      ) : null}
      {hasLocked ? (
        <p className="muted small">
          Locked models need a higher plan. <Link to="/settings#plans">Compare plans</Link>
        </p>
      ) : null}
    </Card>
  );
}
