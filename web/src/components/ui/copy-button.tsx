import { useEffect, useState } from "react";

/** A button that copies `text` (or what `text()` returns when clicked) and says so for a moment. */
export function CopyButton({ text, label, className }: { text: string | (() => string); label: string; className?: string }) {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const timer = window.setTimeout(() => setCopied(false), 1500);
    return () => window.clearTimeout(timer);
  }, [copied]);
  return (
    <button
      type="button"
      className={`copy-btn ${className ?? ""}`}
      aria-label={label}
      onClick={() => {
        const value = typeof text === "function" ? text() : text;
        void navigator.clipboard?.writeText(value).then(() => setCopied(true));
      }}
    >
      {copied ? "Copied" : "Copy"}
    </button>
  );
}
