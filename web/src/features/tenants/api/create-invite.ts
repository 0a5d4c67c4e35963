import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

export interface Invite {
  code: string;
  role: string;
  expires_at: string;
}

/** POST /tenants/invites: a single-use invite code (owners/admins). */
export function createInvite(role: string): Promise<Invite> {
  return apiRequest<Invite>("/tenants/invites", { method: "POST", body: { role } });
}

export function useCreateInvite() {
  return useMutation({ mutationFn: createInvite });
}
