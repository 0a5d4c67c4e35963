import { type FormEvent, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { ApiError } from "@/lib/api-error";
import { useRegister } from "../api/register";
import { AuthCard } from "./auth-card";
import { SsoOptions } from "./sso-options";

const MIN_PASSWORD_LENGTH = 8;

export function RegisterForm() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const register = useRegister();
  const [fullName, setFullName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [tenantName, setTenantName] = useState("");
  const [inviteCode, setInviteCode] = useState(params.get("invite") ?? "");
  const [showInvite, setShowInvite] = useState(Boolean(params.get("invite")));
  const [touched, setTouched] = useState(false);

  const passwordError = touched && password.length < MIN_PASSWORD_LENGTH ? `Use at least ${MIN_PASSWORD_LENGTH} characters.` : null;
  const fieldError = (field: string) =>
    register.error instanceof ApiError ? (register.error.problem.errors?.find((item) => item.field.endsWith(field))?.message ?? null) : null;

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    setTouched(true);
    if (password.length < MIN_PASSWORD_LENGTH) return;
    register.mutate(
      {
        email: email.trim(),
        password,
        full_name: fullName.trim() || undefined,
        tenant_name: showInvite ? undefined : tenantName.trim() || undefined,
        invite_code: showInvite ? inviteCode.trim() || undefined : undefined,
      },
      { onSuccess: () => navigate("/dashboard", { replace: true }) },
    );
  };

  return (
    <AuthCard
      title="Create your account"
      subtitle="Start on the Basic plan for free. Upgrade any time."
      footer={
        <>
          Already have an account? <Link to="/login">Sign in</Link>
        </>
      }
    >
      <form className="form" onSubmit={onSubmit}>
        {register.error ? <ErrorAlert error={register.error} title="Could not create your account" /> : null}
        <TextField label="Full name" name="full_name" autoComplete="name" value={fullName} onChange={(e) => setFullName(e.target.value)} maxLength={200} autoFocus />
        <TextField label="Work email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError("email")} />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="new-password"
          required
          minLength={MIN_PASSWORD_LENGTH}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={passwordError ?? fieldError("password")}
          hint={passwordError ? undefined : `At least ${MIN_PASSWORD_LENGTH} characters.`}
        />
        {showInvite ? (
          <TextField label="Invite code" name="invite_code" value={inviteCode} onChange={(e) => setInviteCode(e.target.value)} hint="You will join the organisation that invited you." autoComplete="off" />
        ) : (
          <TextField label="Organisation name" name="tenant_name" value={tenantName} onChange={(e) => setTenantName(e.target.value)} hint="Optional. You can change it later." maxLength={200} autoComplete="organization" />
        )}
        <button type="button" className="link-btn" onClick={() => setShowInvite((value) => !value)}>
          {showInvite ? "Create a new organisation instead" : "I have an invite code"}
        </button>
        <Button type="submit" loading={register.isPending} className="btn--block">
          Create account
        </Button>
      </form>
      <SsoOptions email={email} next="/dashboard" verb="Sign up" />
    </AuthCard>
  );
}
