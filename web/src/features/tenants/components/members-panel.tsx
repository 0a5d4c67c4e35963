import { type FormEvent, useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { SelectField } from "@/components/ui/field";
import { LoadingState } from "@/components/ui/spinner";
import { formatDateTime, formatRelativeTime } from "@/lib/format";
import { useSession } from "@/lib/session-hooks";
import { type InviteRole, useCreateInvite } from "../api/create-invite";
import { type Member, useMembers } from "../api/get-members";
import { useRemoveMember } from "../api/remove-member";

function InviteForm() {
  const invite = useCreateInvite();
  const [role, setRole] = useState<InviteRole>("member");
  const [copied, setCopied] = useState(false);
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    setCopied(false);
    invite.mutate(role);
  };
  return (
    <form className="invite" onSubmit={onSubmit}>
      <div className="invite__row">
        <SelectField label="Invite as" name="role" value={role} onChange={(e) => setRole(e.target.value === "admin" ? "admin" : "member")}>
          <option value="member">Member</option>
          <option value="admin">Admin</option>
        </SelectField>
        <Button type="submit" loading={invite.isPending}>
          Create invite code
        </Button>
      </div>
      {invite.error ? <ErrorAlert error={invite.error} /> : null}
      {invite.data ? (
        <div className="invite__code" data-testid="invite-code">
          <code>{invite.data.code}</code>
          <Button
            variant="secondary"
            size="sm"
            onClick={() => {
              void navigator.clipboard?.writeText(invite.data.code).then(() => setCopied(true));
            }}
          >
            {copied ? "Copied" : "Copy"}
          </Button>
          <span className="muted">
            Single use, {invite.data.role}, expires {formatDateTime(invite.data.expires_at)}
          </span>
        </div>
      ) : null}
    </form>
  );
}

/** Members of the organisation and single-use invites (owners and admins). */
export function MembersPanel({ canManage }: { canManage: boolean }) {
  const members = useMembers(canManage);
  const remove = useRemoveMember();
  const { claims } = useSession();
  if (!canManage) return null;
  // Nobody removes themselves here (that is deleting the account); only an owner removes an owner.
  const removable = (member: Member) => member.user_id !== claims?.sub && (member.role !== "owner" || claims?.role === "owner");
  return (
    <Card id="members">
      <CardHeader title="Members" description="People in your organisation. Invite teammates with a single-use code." />
      <InviteForm />
      {members.isPending ? <LoadingState label="Loading members…" /> : null}
      {members.error ? <ErrorAlert error={members.error} onRetry={() => void members.refetch()} /> : null}
      {remove.error ? <ErrorAlert error={remove.error} title="Could not remove the member" /> : null}
      {members.data && members.data.items.length === 0 ? <EmptyState title="No members yet" /> : null}
      {members.data && members.data.items.length > 0 ? (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {members.data.items.map((member) => (
                <tr key={member.user_id}>
                  <td>
                    <div className="table__primary">{member.email || member.user_id}</div>
                  </td>
                  <td>
                    <Badge tone={member.role === "owner" ? "accent" : "neutral"}>{member.role}</Badge>
                  </td>
                  <td className="muted">{formatRelativeTime(member.joined_at)}</td>
                  <td>
                    {removable(member) ? (
                      <Button
                        variant="ghost"
                        size="sm"
                        aria-label={`Remove ${member.email || member.user_id}`}
                        loading={remove.isPending && remove.variables === member.user_id}
                        onClick={() => {
                          if (window.confirm(`Remove ${member.email}? Their account, chats and agents are deleted and they are signed out at once.`)) remove.mutate(member.user_id);
                        }}
                      >
                        Remove
                      </Button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}
