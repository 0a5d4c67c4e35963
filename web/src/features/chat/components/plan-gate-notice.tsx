import { Link } from "react-router";
import { Alert } from "@/components/ui/alert";
import { ApiError } from "@/lib/api-error";

function capitalised(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** The 403 `feature-not-in-plan` for `multi_agent`, when that is what `error` is. */
export function multiAgentRefusal(error: unknown): { plan: string; upgradeTo: string | null } | null {
  if (!(error instanceof ApiError) || error.status !== 403) return null;
  const { type, feature, plan, upgrade_to: upgradeTo } = error.problem;
  if (typeof type !== "string" || !type.endsWith("feature-not-in-plan") || feature !== "multi_agent") return null;
  return { plan: typeof plan === "string" ? plan : "current", upgradeTo: typeof upgradeTo === "string" ? upgradeTo : null };
}

/** One sentence: several agents in a chat need a plan this tenant is not on, and which one has it. */
export function PlanGateNotice({ error }: { error: unknown }) {
  const refusal = multiAgentRefusal(error);
  if (!refusal) return null;
  const who = refusal.upgradeTo ? `the ${capitalised(refusal.upgradeTo)} plan` : "a higher plan";
  return (
    <Alert
      tone="warning"
      action={
        <Link className="btn btn--primary btn--sm" to="/settings#plans">
          See plans
        </Link>
      }
    >
      <span data-testid="plan-gate">
        Chats with several agents or a panel or orchestrated mode need {who}; your {capitalised(refusal.plan)} plan does not include them.
      </span>
    </Alert>
  );
}
