import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { mentionRefusal } from "./mention-error";
import { PlanGateNotice, multiAgentRefusal } from "./plan-gate-notice";

/** A send error; for a 429 with `upgrade_to`, a link to the plans. An unresolved @mention is shown under the composer instead (MentionError). */
export function SendError({ error, onDismiss }: { error: unknown; onDismiss: () => void }) {
  if (!error || mentionRefusal(error)) return null;
  return (
    <div className="send-error">
      {multiAgentRefusal(error) ? (
        <PlanGateNotice error={error} />
      ) : (
        <ErrorAlert
          error={error}
          upgradeAction={
            <Link className="btn btn--primary btn--sm" to="/settings#plans">
              See plans
            </Link>
          }
        />
      )}
      <button type="button" className="link-btn small" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
