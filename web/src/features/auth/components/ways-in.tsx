import { type FormEvent, useState } from "react";
import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { TextField } from "@/components/ui/field";
import { formatRelativeTime } from "@/lib/format";
import { useAccount, useRemovePassword, useSetPassword } from "../api/ways-in";

const MIN_PASSWORD_LENGTH = 8;

/** How the person can sign in: linked identity providers, and a password beside them. */
export function WaysIn() {
  const account = useAccount();
  const setPassword = useSetPassword();
  const removePassword = useRemovePassword();
  const [password, setPasswordText] = useState("");
  const [currentPassword, setCurrentPassword] = useState("");

  if (!account.data) return account.error ? <ErrorAlert error={account.error} /> : null;
  const { identities, has_password: hasPassword } = account.data;
  const identityList = identities ?? [];

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (password.length < MIN_PASSWORD_LENGTH) return;
    setPassword.mutate(
      { password, current_password: hasPassword ? currentPassword : undefined },
      {
        onSuccess: () => {
          setPasswordText("");
          setCurrentPassword("");
        },
      },
    );
  };

  return (
    <Card>
      <CardHeader title="Ways to sign in" description="Identity providers linked to your account, and your password." />
      <div className="form form--wide">
        <ul className="identity-list" aria-label="Linked identities">
          {identityList.length === 0 ? <li className="muted">No identity provider linked yet.</li> : null}
          {identityList.map((identity) => (
            <li key={`${identity.provider_id}:${identity.email}`}>
              <span>
                <strong>{identity.provider_name}</strong> · {identity.email}
              </span>
              <span className="muted">linked {formatRelativeTime(identity.linked_at)}</span>
            </li>
          ))}
        </ul>
        {setPassword.error ? <ErrorAlert error={setPassword.error} title="Could not save the password" /> : null}
        {removePassword.error ? <ErrorAlert error={removePassword.error} /> : null}
        {setPassword.isSuccess ? <Alert tone="success">Password saved.</Alert> : null}
        <form className="form-grid" onSubmit={onSubmit} aria-label="Password">
          {hasPassword ? (
            <TextField label="Current password" type="password" name="current_password" autoComplete="current-password" value={currentPassword} onChange={(e) => setCurrentPassword(e.target.value)} />
          ) : null}
          <TextField
            label={hasPassword ? "New password" : "Add a password"}
            type="password"
            name="new_password"
            autoComplete="new-password"
            minLength={MIN_PASSWORD_LENGTH}
            value={password}
            onChange={(e) => setPasswordText(e.target.value)}
            hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}
          />
          <div className="form-actions">
            <Button type="submit" loading={setPassword.isPending}>
              {hasPassword ? "Change password" : "Add password"}
            </Button>
            {hasPassword && identityList.length > 0 ? (
              <Button variant="ghost" loading={removePassword.isPending} onClick={() => removePassword.mutate()}>
                Remove password
              </Button>
            ) : null}
          </div>
        </form>
      </div>
    </Card>
  );
}
