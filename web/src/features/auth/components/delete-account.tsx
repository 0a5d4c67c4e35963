import { type FormEvent, useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { Dialog } from "@/components/ui/dialog";
import { TextField } from "@/components/ui/field";
import { useDeleteAccount } from "../api/delete-account";
import { useAccount } from "../api/ways-in";

/** Delete the account: a confirm dialog that asks for the password (none without one). */
export function DeleteAccount() {
  const account = useAccount();
  const remove = useDeleteAccount();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const hasPassword = account.data?.has_password !== false;

  const close = () => {
    setOpen(false);
    setPassword("");
    remove.reset();
  };
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    remove.mutate(password);
  };

  return (
    <Card>
      <CardHeader title="Delete account" description="Your chats, agents, documents and profile are deleted; every session and API key stops working at once." />
      <div className="form-actions">
        <Button variant="danger" onClick={() => setOpen(true)}>
          Delete account
        </Button>
      </div>
      <Dialog open={open} title="Delete your account" onClose={close}>
        <form className="form" onSubmit={onSubmit} aria-label="Delete your account">
          <p>This cannot be undone.</p>
          {hasPassword ? (
            <TextField label="Your password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          ) : (
            <p className="muted">Without a password, a sign-in within the last 10 minutes confirms it.</p>
          )}
          {remove.error ? <ErrorAlert error={remove.error} title="The account was not deleted" /> : null}
          <div className="form-actions">
            <Button variant="secondary" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" variant="danger" loading={remove.isPending}>
              Delete my account
            </Button>
          </div>
        </form>
      </Dialog>
    </Card>
  );
}
