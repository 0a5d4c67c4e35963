const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** Keep absolute http(s)/mailto URLs; anything else (javascript:, data:, vbscript:) becomes null. */
export function safeUrl(url: string): string | null {
  const trimmed = url.trim();
  if (!trimmed) return null;
  try {
    const parsed = new URL(trimmed);
    return SAFE_PROTOCOLS.has(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}
