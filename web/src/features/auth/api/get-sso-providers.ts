import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/auth";

export type SsoProvider = components["schemas"]["ProviderRead"];
export type SsoProviderList = components["schemas"]["ProviderList"];

/** GET /auth/sso/providers: the deployment's providers, and the email's organisation's own. */
export function getSsoProviders(email: string): Promise<SsoProviderList> {
  return apiRequest<SsoProviderList>("/auth/sso/providers", { query: { email }, anonymous: true });
}

/** Only a whole-looking address is sent, so typing does not ask on every key. */
export function ssoLookupEmail(email: string): string {
  const trimmed = email.trim().toLowerCase();
  return /^[^@\s]+@[^@\s]+\.[^@\s]{2,}$/.test(trimmed) ? trimmed : "";
}

export function useSsoProviders(email: string) {
  const lookup = ssoLookupEmail(email);
  return useQuery({
    queryKey: ["auth", "sso-providers", lookup],
    queryFn: () => getSsoProviders(lookup),
    // 1 min: providers change when an owner edits them, rarely.
    staleTime: 60_000,
    placeholderData: (previous) => previous,
  });
}

/** Where "Continue with …" goes: a full-page navigation through the identity provider. */
export function ssoStartUrl(providerId: string, next: string, email: string): string {
  const params = new URLSearchParams({ redirect: next });
  const hint = ssoLookupEmail(email);
  if (hint) params.set("login_hint", hint);
  return `/auth/sso/${encodeURIComponent(providerId)}/start?${params.toString()}`;
}
