import { type FormEvent, useState } from "react";
import { Link, useNavigate } from "react-router";
import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { useSession } from "@/lib/session-hooks";
import { useLogin } from "../api/login";
import { useSafeNext } from "../hooks/use-safe-next";
import { AuthCard } from "./auth-card";
import { SsoError, SsoOptions } from "./sso-options";

export function LoginForm() {
  const navigate = useNavigate();
  const next = useSafeNext();
  const login = useLogin();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  // Sent here because the session ended (expired or revoked), not by signing out.
  const sessionEnded = useSession().endedBy === "expiry";

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    login.mutate({ email: email.trim(), password }, { onSuccess: () => navigate(next, { replace: true }) });
  };

  return (
    <AuthCard
      title="Welcome back"
      subtitle="Sign in to continue to your agents and chats."
      footer={
        <>
          New to kibitz? <Link to="/register">Create an account</Link>
        </>
      }
    >
      <form className="form" onSubmit={onSubmit}>
        {login.error ? <ErrorAlert error={login.error} title="Could not sign you in" /> : <SsoError />}
        {sessionEnded && !login.error ? <Alert tone="info">Your session ended; sign in again to continue.</Alert> : null}
        <TextField label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        <TextField label="Password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        <Button type="submit" loading={login.isPending} className="btn--block">
          Sign in
        </Button>
      </form>
      <SsoOptions email={email} next={next} />
    </AuthCard>
  );
}
