import { useEffect } from "react";
import { useLocation } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { LoadingState } from "@/components/ui/spinner";
import { DeleteAccount } from "@/features/auth/components/delete-account";
import { TenantSsoSettings } from "@/features/auth/components/tenant-sso-settings";
import { WaysIn } from "@/features/auth/components/ways-in";
import { useMyAgents } from "@/features/agents/api/get-my-agents";
import { useBillingConfig } from "@/features/billing/api/get-billing-config";
import { BillingPanel } from "@/features/billing/components/billing-panel";
import { ApiKeysPanel } from "@/features/api-keys/components/api-keys-panel";
import { MembersPanel } from "@/features/tenants/components/members-panel";
import { PlanComparison } from "@/features/tenants/components/plan-comparison";
import { useMe } from "@/features/users/api/get-me";
import { PreferencesForm } from "@/features/users/components/preferences-form";
import { ProfileForm } from "@/features/users/components/profile-form";
import { useCanManageTenant, useSession } from "@/lib/session-hooks";
import { PageHeader } from "./page-header";

export function SettingsRoute() {
  const me = useMe();
  const agents = useMyAgents();
  const canManage = useCanManageTenant();
  const isOwner = useSession().claims?.role === "owner";
  const location = useLocation();
  const billing = useBillingConfig();
  const billingEnabled = billing.data?.enabled === true;

  // Deep links such as /settings#plans scroll to their section once it is rendered.
  useEffect(() => {
    if (!location.hash || !me.data) return;
    document.getElementById(location.hash.slice(1))?.scrollIntoView({ block: "start" });
  }, [location.hash, me.data]);

  return (
    <div className="page">
      <PageHeader title="Settings" description="Your profile, preferences and your organisation's plan." />
      <nav className="subnav" aria-label="Settings sections">
        <a href="#profile">Profile</a>
        <a href="#preferences">Preferences</a>
        <a href="#plans">Plans</a>
        {billingEnabled ? <a href="#billing">Billing</a> : null}
        <a href="#sign-in">Sign-in</a>
        {canManage ? <a href="#members">Members</a> : null}
        <a href="#api-keys">API keys</a>
        {isOwner ? <a href="#sso">Single sign-on</a> : null}
        <a href="#account">Account</a>
      </nav>
      {me.isPending ? <LoadingState label="Loading your profile…" /> : null}
      {me.error ? <ErrorAlert error={me.error} onRetry={() => void me.refetch()} /> : null}
      {me.data ? (
        <>
          <div id="profile">
            <ProfileForm profile={me.data} />
          </div>
          <div id="preferences">
            <PreferencesForm profile={me.data} agents={(agents.data?.items ?? []).map(({ id, name, model }) => ({ id, name, model }))} />
          </div>
        </>
      ) : null}
      <PlanComparison canManage={canManage} throughBilling={billingEnabled} />
      <BillingPanel canManage={canManage} />
      {/* After the forms above, in the order of the section links: it renders once its data has
          come, and a card appearing above the preferences would move them under the pointer. */}
      {me.data ? (
        <div id="sign-in">
          <WaysIn />
        </div>
      ) : null}
      <MembersPanel canManage={canManage} />
      <ApiKeysPanel canManage={canManage} />
      {isOwner ? (
        <div id="sso">
          <TenantSsoSettings />
        </div>
      ) : null}
      {me.data ? (
        <div id="account">
          <DeleteAccount />
        </div>
      ) : null}
    </div>
  );
}
