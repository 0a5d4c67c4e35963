import type { ReactNode } from "react";
import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { LoadingState } from "@/components/ui/spinner";
import { formatDateTime, planLabel } from "@/lib/format";
import { safeUrl } from "@/lib/safe-url";
import { useBillingConfig } from "../api/get-billing-config";
import { type Invoice, useInvoices } from "../api/get-invoices";
import { type BillingSubscription, useSubscription } from "../api/get-subscription";
import { useOpenPortal } from "../api/open-portal";
import { useStartCheckout } from "../api/start-checkout";

const OVERDUE = new Set(["past_due", "unpaid"]);
const STATUS_LABELS: Record<string, string> = {
  none: "No subscription",
  active: "Active",
  trialing: "Trial",
  past_due: "Payment overdue",
  unpaid: "Unpaid",
  canceled: "Cancelled",
  incomplete: "Incomplete",
  incomplete_expired: "Expired",
};

function money(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}

function statusTone(status: string): "success" | "warning" | "danger" | "neutral" {
  if (status === "active" || status === "trialing") return "success";
  if (OVERDUE.has(status)) return "danger";
  return "neutral";
}

function PastDueBanner({ subscription, action }: { subscription: BillingSubscription; action?: ReactNode }) {
  if (!OVERDUE.has(subscription.status)) return null;
  const until = subscription.grace_ends_at ? formatDateTime(subscription.grace_ends_at) : null;
  return (
    <div data-testid="billing-past-due">
      <Alert tone="warning" title="Payment overdue" action={action}>
        The last payment for {planLabel(subscription.plan)} did not go through.
        {until ? ` The plan stays until ${until}; after that your organisation returns to the free plan.` : " Your organisation is back on the free plan until it is paid."} Update the payment method to keep it.
      </Alert>
    </div>
  );
}

function InvoiceList({ invoices }: { invoices: Invoice[] }) {
  if (invoices.length === 0) return <EmptyState title="No invoices yet">Invoices appear here once a payment is made.</EmptyState>;
  return (
    <div className="table-wrap">
      <table className="table" data-testid="billing-invoices">
        <thead>
          <tr>
            <th>Date</th>
            <th>Invoice</th>
            <th>Amount</th>
            <th>Status</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {invoices.map((invoice) => {
            const link = invoice.hosted_invoice_url ? safeUrl(invoice.hosted_invoice_url) : null;
            return (
              <tr key={invoice.id}>
                <td>{formatDateTime(invoice.created_at)}</td>
                <td>{invoice.number ?? invoice.id}</td>
                <td>{money(invoice.status === "paid" ? invoice.amount_paid : invoice.amount_due, invoice.currency)}</td>
                <td>
                  <Badge tone={invoice.status === "paid" ? "success" : invoice.status === "open" ? "warning" : "neutral"}>{invoice.status}</Badge>
                </td>
                <td>
                  {link ? (
                    <a href={link} target="_blank" rel="noopener noreferrer">
                      View
                    </a>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** What the organisation pays for through Stripe: status, upgrade (Checkout), the portal, invoices.
 * Renders nothing when the deployment has no billing. */
export function BillingPanel({ canManage, freePlan = "basic" }: { canManage: boolean; freePlan?: string }) {
  const config = useBillingConfig();
  const enabled = config.data?.enabled === true;
  const subscription = useSubscription(enabled);
  const invoices = useInvoices(enabled && canManage);
  const checkout = useStartCheckout();
  const portal = useOpenPortal();
  if (!enabled) return null;
  const current = subscription.data;
  const returned = new URLSearchParams(window.location.search).get("billing");
  const manage =
    canManage && current && current.status !== "none" ? (
      <Button variant="secondary" loading={portal.isPending} onClick={() => portal.mutate()}>
        Manage billing
      </Button>
    ) : undefined;
  return (
    <Card id="billing" data-testid="billing-panel">
      <CardHeader title="Billing" description="Paid plans are billed monthly through Stripe." action={manage} />
      {returned === "success" ? <Alert tone="success">Thank you! The new plan applies as soon as Stripe confirms the payment.</Alert> : null}
      {returned === "cancelled" ? <Alert tone="info">Checkout was cancelled; nothing was charged.</Alert> : null}
      {subscription.isPending ? <LoadingState label="Loading the subscription…" /> : null}
      {subscription.error ? <ErrorAlert error={subscription.error} onRetry={() => void subscription.refetch()} /> : null}
      {checkout.error ? <ErrorAlert error={checkout.error} /> : null}
      {portal.error ? <ErrorAlert error={portal.error} /> : null}
      {current ? (
        <>
          <PastDueBanner subscription={current} action={manage} />
          <dl className="billing-summary" data-testid="billing-summary">
            <div>
              <dt>Plan</dt>
              <dd>{planLabel(current.plan)}</dd>
            </div>
            <div>
              <dt>Status</dt>
              <dd>
                <Badge tone={statusTone(current.status)}>{STATUS_LABELS[current.status] ?? current.status}</Badge>
              </dd>
            </div>
            {current.current_period_end ? (
              <div>
                <dt>{current.cancel_at_period_end ? "Ends on" : "Renews on"}</dt>
                <dd>{formatDateTime(current.current_period_end)}</dd>
              </div>
            ) : null}
          </dl>
          {current.plan === freePlan && canManage ? (
            <div className="billing-upgrades">
              {(config.data?.plans ?? []).map((offer) => (
                <Button key={offer.id} loading={checkout.isPending && checkout.variables === offer.id} onClick={() => checkout.mutate(offer.id)}>
                  Upgrade to {planLabel(offer.id)}
                </Button>
              ))}
            </div>
          ) : null}
          {!canManage ? <Alert tone="info">Only owners and admins manage billing.</Alert> : null}
        </>
      ) : null}
      {canManage ? (
        <>
          <h3 className="billing-invoices__title">Invoices</h3>
          {invoices.error ? <ErrorAlert error={invoices.error} onRetry={() => void invoices.refetch()} /> : null}
          {invoices.data ? <InvoiceList invoices={invoices.data.items} /> : null}
        </>
      ) : null}
    </Card>
  );
}
