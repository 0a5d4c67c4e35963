import { formatCompact } from "@/lib/format";

/** A usage meter: used out of limit, warning from 80 %, full at 100 %. */
export function UsageMeter({ label, used, limit, hint }: { label: string; used: number; limit: number | null; hint?: string }) {
  const unlimited = limit === null || limit < 0;
  const ratio = unlimited || limit === 0 ? 0 : Math.min(1, used / limit);
  const tone = ratio >= 1 ? "full" : ratio >= 0.8 ? "warn" : "ok";
  return (
    <div className={`meter meter--${tone}`}>
      <div className="meter__top">
        <span className="meter__label">{label}</span>
        <span className="meter__value">
          {formatCompact(used)}
          <span className="meter__limit"> / {unlimited ? "∞" : formatCompact(limit)}</span>
        </span>
      </div>
      <div
        className="meter__track"
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={unlimited ? undefined : limit}
        aria-valuenow={used}
      >
        <div className="meter__fill" style={{ width: `${Math.round(ratio * 100)}%` }} />
      </div>
      {hint ? <p className="meter__hint">{hint}</p> : null}
    </div>
  );
}
