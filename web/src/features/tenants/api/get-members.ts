import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

export interface Member {
  user_id: string;
  email?: string | null;
  full_name?: string | null;
  role: string;
  joined_at?: string | null;
  created_at?: string | null;
}

/** GET /tenants/members. */
export function getMembers(): Promise<{ items: Member[] }> {
  return apiRequest<{ items: Member[] } | Member[]>("/tenants/members").then((answer) => (Array.isArray(answer) ? { items: answer } : answer));
}

export function useMembers(enabled: boolean) {
  // Always fresh on opening the page: someone may have just joined with an invite.
  return useQuery({ queryKey: ["tenants", "members"], queryFn: getMembers, enabled, staleTime: 0 });
}
