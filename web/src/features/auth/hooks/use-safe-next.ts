import { useSearchParams } from "react-router";

/** Where to go after signing in: a same-site path from ?next=, never another origin. */
export function useSafeNext(fallback = "/dashboard"): string {
  const [params] = useSearchParams();
  const next = params.get("next");
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\")) return next;
  return fallback;
}
