import type { ReactNode } from "react";
import { ApiError, errorMessage } from "@/lib/api-error";

type Tone = "error" | "warning" | "info" | "success";

export function Alert({ tone = "info", title, children, action }: { tone?: Tone; title?: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <div className={`alert alert--${tone}`} role={tone === "error" ? "alert" : "status"}>
      <div className="alert__body">
        {title ? <p className="alert__title">{title}</p> : null}
        {children ? <div className="alert__text">{children}</div> : null}
      </div>
      {action ? <div className="alert__action">{action}</div> : null}
    </div>
  );
}

/** Show any API error: the problem's `detail`, and for a limit the plan that lifts it. */
export function ErrorAlert({ error, onRetry, upgradeAction, title: titleOverride }: { error: unknown; onRetry?: () => void; upgradeAction?: ReactNode; title?: string }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  const upgradeTo = api && typeof api.problem.upgrade_to === "string" ? api.problem.upgrade_to : null;
  // A plan limit: 429 for quotas, 403 for what the plan does not include (a model, more agents).
  if (api && (api.isLimitReached || upgradeTo)) {
    const retry = api.retryAfter ? ` Try again in ${api.retryAfter} s.` : "";
    return (
      <Alert tone="warning" title={api.isLimitReached ? "Limit reached" : "Not included in your plan"} action={upgradeTo ? upgradeAction : undefined}>
        {errorMessage(error)}
        {upgradeTo && !errorMessage(error).toLowerCase().includes(upgradeTo.toLowerCase())
          ? ` The ${upgradeTo.charAt(0).toUpperCase()}${upgradeTo.slice(1)} plan lifts this limit.`
          : upgradeTo
            ? ""
            : retry}
      </Alert>
    );
  }
  const title = titleOverride ?? (api?.isNetworkError ? "Connection problem" : api?.isServiceUnavailable ? "Service unavailable" : (api?.problem.title ?? "Something went wrong"));
  return (
    <Alert
      tone="error"
      title={title}
      action={
        onRetry ? (
          <button type="button" className="btn btn--secondary btn--sm" onClick={onRetry}>
            Try again
          </button>
        ) : undefined
      }
    >
      {errorMessage(error)}
      {api?.problem.errors?.length ? (
        <ul className="alert__list">
          {api.problem.errors.map((item) => (
            <li key={`${item.field}:${item.message}`}>
              <strong>{item.field}</strong>: {item.message}
            </li>
          ))}
        </ul>
      ) : null}
    </Alert>
  );
}
