import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Card, CardHeader } from "@/components/ui/card";
import { UsageMeter } from "@/components/ui/meter";
import { LoadingState } from "@/components/ui/spinner";
import { formatNumber, planLabel } from "@/lib/format";
import { usePlan } from "../api/get-plan";

/** Usage against the plan's limits, as meters. */
export function UsageOverview({ agentCount }: { agentCount: number | null }) {
  const plan = usePlan();
  return (
    <Card className="usage">
      <CardHeader
        title="Usage"
        description={
          plan.data ? (
            <>
              <strong>{plan.data.tenant_name}</strong> · up to {formatNumber(plan.data.limits.requests_per_minute)} requests per minute
            </>
          ) : (
            "Your organisation's plan"
          )
        }
        action={
          plan.data ? (
            <div className="usage__plan">
              <Badge tone="accent">{planLabel(plan.data.plan)} plan</Badge>
              {plan.data.plan !== "gold" ? (
                <Link className="btn btn--secondary btn--sm" to="/settings#plans">
                  Upgrade
                </Link>
              ) : null}
            </div>
          ) : undefined
        }
      />
      {plan.isPending ? <LoadingState label="Loading usage…" /> : null}
      {plan.error ? <ErrorAlert error={plan.error} onRetry={() => void plan.refetch()} /> : null}
      {plan.data ? (
        <div className="usage__meters" data-testid="usage-meters">
          <UsageMeter
            label="Messages today"
            used={plan.data.usage.messages.used}
            limit={plan.data.limits.messages_per_day}
          />
          <UsageMeter
            label="Tokens this month"
            used={plan.data.usage.tokens.used}
            limit={plan.data.limits.tokens_per_month}
          />
          <UsageMeter label="Agents" used={agentCount ?? 0} limit={plan.data.limits.agents} />
        </div>
      ) : null}
    </Card>
  );
}
