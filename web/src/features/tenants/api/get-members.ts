import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/tenants";

export type Member = components["schemas"]["MemberRead"];
export type MemberPage = components["schemas"]["MemberPage"];

/** GET /tenants/members. */
export function getMembers(): Promise<MemberPage> {
  return apiRequest<MemberPage>("/tenants/members");
}

export function useMembers(enabled: boolean) {
  // Always fresh on opening the page: someone may have just joined with an invite.
  return useQuery({ queryKey: ["tenants", "members"], queryFn: getMembers, enabled, staleTime: 0 });
}
