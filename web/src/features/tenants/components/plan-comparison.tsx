import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { LoadingState } from "@/components/ui/spinner";
import { formatCompact, planLabel } from "@/lib/format";
import { type ModelsBySize, useModelsBySize } from "../api/get-model-sizes";
import { usePlan } from "../api/get-plan";
import { type PlanOffer, usePlans } from "../api/get-plans";
import { useSubscribe } from "../api/subscribe";

const FEATURE_LABELS: Record<string, string> = { knowledge: "Knowledge (RAG)", multi_agent: "Multi-agent" };

function modelsLabel(models: string[]): string {
  if (models.includes("*")) return "All models";
  if (models.length <= 3) return models.join(", ");
  return `${models.slice(0, 3).join(", ")} +${models.length - 3}`;
}

/** Each size class the plan allows, with the models of that size this deployment offers. */
function PlanModels({ sizes, modelsBySize }: { sizes: string[]; modelsBySize: ModelsBySize | undefined }) {
  if (sizes.includes("*") || !modelsBySize) return <li>{modelsLabel(sizes)}</li>;
  return (
    <li className="plan__models">
      Models:
      <ul>
        {sizes.map((size) => (
          <li key={size} data-testid={`plan-size-${size}`}>
            <strong>{size}</strong>
            {modelsBySize[size]?.length ? `: ${modelsBySize[size].join(", ")}` : ": none offered here"}
          </li>
        ))}
      </ul>
    </li>
  );
}

function PlanCard({ offer, current, canManage, onChoose, pending, throughBilling, modelsBySize }: { offer: PlanOffer; current: boolean; canManage: boolean; onChoose: () => void; pending: boolean; throughBilling: boolean; modelsBySize: ModelsBySize | undefined }) {
  return (
    <article className={`plan ${current ? "plan--current" : ""}`} data-testid={`plan-${offer.id}`}>
      <header className="plan__header">
        <h3 className="plan__name">{offer.name || planLabel(offer.id)}</h3>
        {current ? <Badge tone="accent">Current</Badge> : null}
      </header>
      <ul className="plan__limits">
        <li>
          <strong>{formatCompact(offer.limits.messages_per_day)}</strong> messages / day
        </li>
        <li>
          <strong>{formatCompact(offer.limits.tokens_per_month)}</strong> tokens / month
        </li>
        <li>
          <strong>{formatCompact(offer.limits.agents)}</strong> agents
        </li>
        <li>
          <strong>{formatCompact(offer.limits.requests_per_minute)}</strong> requests / min
        </li>
        <PlanModels sizes={offer.limits.models} modelsBySize={modelsBySize} />
        {offer.features.map((feature) => (
          <li key={feature}>{FEATURE_LABELS[feature] ?? feature}</li>
        ))}
      </ul>
      <div className="plan__action">
        {current ? (
          <Button variant="secondary" disabled className="btn--block">
            Your plan
          </Button>
        ) : throughBilling ? null : (
          <Button variant="primary" className="btn--block" disabled={!canManage} loading={pending} onClick={onChoose}>
            Switch to {offer.name || planLabel(offer.id)}
          </Button>
        )}
      </div>
    </article>
  );
}

/** Plans side by side; owners and admins switch with one click (it applies at once), or, with
 * `throughBilling`, through the billing section (Stripe Checkout and portal). */
export function PlanComparison({ canManage, throughBilling = false }: { canManage: boolean; throughBilling?: boolean }) {
  const plans = usePlans();
  const plan = usePlan();
  const subscribe = useSubscribe();
  const modelsBySize = useModelsBySize();
  return (
    <Card id="plans">
      <CardHeader title="Plans" description="Limits apply to your whole organisation and change immediately." />
      {!canManage ? <Alert tone="info">Only owners and admins can change the plan.</Alert> : null}
      {throughBilling && canManage ? <Alert tone="info">Paid plans are bought and cancelled under Billing.</Alert> : null}
      {subscribe.error ? <ErrorAlert error={subscribe.error} /> : null}
      {subscribe.isSuccess ? <Alert tone="success">Plan updated. The new limits apply now.</Alert> : null}
      {plans.isPending ? <LoadingState label="Loading plans…" /> : null}
      {plans.error ? <ErrorAlert error={plans.error} onRetry={() => void plans.refetch()} /> : null}
      {plans.data ? (
        <div className="plans">
          {plans.data.items.map((offer) => (
            <PlanCard
              key={offer.id}
              offer={offer}
              current={plan.data?.plan === offer.id}
              canManage={canManage}
              pending={subscribe.isPending && subscribe.variables === offer.id}
              onChoose={() => subscribe.mutate(offer.id)}
              throughBilling={throughBilling}
              modelsBySize={modelsBySize.data}
            />
          ))}
        </div>
      ) : null}
    </Card>
  );
}
