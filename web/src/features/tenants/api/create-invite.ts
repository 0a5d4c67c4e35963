import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/tenants";

export type Invite = components["schemas"]["InviteRead"];
export type InviteRole = NonNullable<components["schemas"]["InviteCreate"]["role"]>;

/** POST /tenants/invites: a single-use invite code (owners/admins). */
export function createInvite(role: InviteRole): Promise<Invite> {
  const body: components["schemas"]["InviteCreate"] = { role };
  return apiRequest<Invite>("/tenants/invites", { method: "POST", body });
}

export function useCreateInvite() {
  return useMutation({ mutationFn: createInvite });
}
