import { useSearchParams } from "react-router";
import { Alert } from "@/components/ui/alert";
import { ssoStartUrl, useSsoProviders } from "../api/get-sso-providers";

/** What /login shows for the auth service's `?error=` codes (the same words as its errors.py). */
const SIGN_IN_ERRORS: Record<string, string> = {
  sso_failed: "Signing in with your identity provider did not work. Please try again.",
  sso_cancelled: "Signing in was cancelled at your identity provider.",
  sso_expired: "That sign-in took too long or was already used. Please start again.",
  sso_unavailable: "Your identity provider cannot be reached right now. Try again shortly.",
  sso_unverified_email: "Your identity provider has not verified your email address, so it cannot sign you in.",
  sso_account_elsewhere: "An account with this email belongs to another organisation. Sign in with its password.",
  sso_wrong_domain: "This identity provider cannot sign in people with your email domain.",
  sso_required: "Your organisation requires signing in through its identity provider.",
  sso_unknown_provider: "This sign-in option does not exist (any more).",
};

/** The error a single sign-on round trip came back with, in words (never echoes the URL). */
export function SsoError() {
  const [params] = useSearchParams();
  const code = params.get("error");
  if (!code) return null;
  return (
    <Alert tone="error" title="Could not sign you in">
      {SIGN_IN_ERRORS[code] ?? SIGN_IN_ERRORS.sso_failed}
    </Alert>
  );
}

/**
 * "Continue with …" for every provider the email may use: the deployment's, and first the
 * organisation's own when the email's domain has one. Plain links: the browser leaves for the
 * identity provider and comes back signed in.
 */
export function SsoOptions({ email, next, verb = "Continue" }: { email: string; next: string; verb?: string }) {
  const providers = useSsoProviders(email);
  const items = providers.data?.items ?? [];
  if (items.length === 0) return null;
  return (
    <div className="sso-options" aria-label="Single sign-on">
      <div className="sso-options__divider">
        <span>or</span>
      </div>
      {items.map((provider) => (
        <a key={provider.id} className="btn btn--secondary btn--block" href={ssoStartUrl(provider.id, next, email)} data-provider={provider.id}>
          {verb} with {provider.name}
        </a>
      ))}
    </div>
  );
}
