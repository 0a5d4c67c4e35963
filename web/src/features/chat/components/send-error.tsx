import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";

/** A send error; for a 429 with `upgrade_to`, a link to the plans. */
export function SendError({ error, onDismiss }: { error: unknown; onDismiss: () => void }) {
  if (!error) return null;
  return (
    <div className="send-error">
      <ErrorAlert
        error={error}
        upgradeAction={
          <Link className="btn btn--primary btn--sm" to="/settings#plans">
            See plans
          </Link>
        }
      />
      <button type="button" className="link-btn small" onClick={onDismiss}>
        Dismiss
      </button>
    </div>
  );
}
