import { type ReactNode, useEffect, useRef, useState } from "react";
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

/** Seconds left until `deadline` (epoch ms), ticking once a second. */
function useSecondsUntil(deadline: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => {
      const current = Date.now();
      setNow(current);
      if (current >= deadline) window.clearInterval(timer);
    }, 1000);
    return () => window.clearInterval(timer);
  }, [deadline]);
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

function RateLimitCountdown({ retryAfter, onRetry }: { retryAfter: number; onRetry?: () => void }) {
  const [deadline] = useState(() => Date.now() + retryAfter * 1000);
  const left = useSecondsUntil(deadline);
  const retried = useRef(false);
  useEffect(() => {
    if (left === 0 && retryAfter > 0 && onRetry && !retried.current) {
      retried.current = true;
      onRetry();
    }
  }, [left, retryAfter, onRetry]);
  const sentence = left > 0 ? `Too many requests in the last minute; try again in ${left} s.` : "Too many requests in the last minute; try again now.";
  return (
    <div className="alert alert--warning" role="status" data-testid="rate-limit-notice">
      <div className="alert__body">
        <p className="alert__text">{sentence}</p>
      </div>
      {left === 0 && onRetry ? (
        <div className="alert__action">
          <button type="button" className="btn btn--secondary btn--sm" onClick={onRetry}>
            Try again
          </button>
        </div>
      ) : null}
    </div>
  );
}

// Each refusal gets its own countdown: a failed retry is a new error, with a new Retry-After.
const refusalIds = new WeakMap<ApiError, number>();
let nextRefusalId = 0;
function refusalId(error: ApiError): number {
  let id = refusalIds.get(error);
  if (id === undefined) {
    id = ++nextRefusalId;
    refusalIds.set(error, id);
  }
  return id;
}

/**
 * A request rate limit (the gateway's 429, not a plan quota): one sentence saying when to retry,
 * counting down; when the wait is over it asks again by itself (`onRetry`).
 */
export function RateLimitNotice({ error, onRetry }: { error: ApiError; onRetry?: () => void }) {
  return <RateLimitCountdown key={refusalId(error)} retryAfter={error.retryAfter ?? 0} onRetry={onRetry} />;
}

/** Show any API error: the problem's `detail`, and for a limit the plan that lifts it. */
export function ErrorAlert({ error, onRetry, upgradeAction, title: titleOverride }: { error: unknown; onRetry?: () => void; upgradeAction?: ReactNode; title?: string }) {
  if (!error) return null;
  const api = error instanceof ApiError ? error : null;
  const upgradeTo = api && typeof api.problem.upgrade_to === "string" ? api.problem.upgrade_to : null;
  if (api?.isRateLimited) return <RateLimitNotice error={api} onRetry={onRetry} />;
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
