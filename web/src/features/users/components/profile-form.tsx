import { type FormEvent, useState } from "react";
import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { TextField } from "@/components/ui/field";
import { safeUrl } from "@/lib/safe-url";
import type { Profile } from "../api/get-me";
import { useUpdateMe } from "../api/update-me";
import { Avatar } from "./avatar";

export function ProfileForm({ profile }: { profile: Profile }) {
  const update = useUpdateMe();
  const [fullName, setFullName] = useState(profile.full_name ?? "");
  const [avatarUrl, setAvatarUrl] = useState(profile.avatar_url ?? "");
  const avatarError = avatarUrl.trim() && !safeUrl(avatarUrl) ? "Use an http(s) address." : null;

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (avatarError) return;
    update.mutate({ full_name: fullName.trim() || null, avatar_url: avatarUrl.trim() || null });
  };

  return (
    <Card>
      <CardHeader title="Profile" description="How you appear to your teammates." />
      <form className="form form--wide" onSubmit={onSubmit}>
        <div className="profile-row">
          <Avatar name={fullName || profile.email} url={avatarUrl && !avatarError ? avatarUrl : null} size="lg" />
          <div>
            <p className="profile-row__name">{fullName || "No name yet"}</p>
            <p className="muted">{profile.email}</p>
          </div>
        </div>
        {update.error ? <ErrorAlert error={update.error} /> : null}
        {update.isSuccess ? <Alert tone="success">Profile saved.</Alert> : null}
        <div className="form-grid">
          <TextField label="Full name" name="full_name" value={fullName} onChange={(e) => setFullName(e.target.value)} maxLength={200} autoComplete="name" />
          <TextField label="Avatar URL" name="avatar_url" type="url" value={avatarUrl} onChange={(e) => setAvatarUrl(e.target.value)} error={avatarError} placeholder="https://…" />
        </div>
        <div className="form-actions">
          <Button type="submit" loading={update.isPending}>
            Save profile
          </Button>
        </div>
      </form>
    </Card>
  );
}
