import { queryOptions, useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";

export interface UserPreferences {
  theme?: "light" | "dark" | "system";
  default_agent_id?: string | null;
  selected_agent_ids?: string[];
  [key: string]: unknown;
}

export interface Subscription {
  tenant_id: string;
  tenant_name: string;
  plan: string;
  limits?: Record<string, unknown>;
}

/** GET /users/me (the schema should be generated from the users service's OpenAPI). */
export interface Profile {
  id: string;
  auth_user_id: string;
  email: string;
  full_name: string | null;
  avatar_url: string | null;
  preferences: UserPreferences;
  subscription: Subscription | null;
}

export const meQueryKey = ["users", "me"] as const;

export function getMe(): Promise<Profile> {
  return apiRequest<Profile>("/users/me");
}

export function meQueryOptions() {
  return queryOptions({ queryKey: meQueryKey, queryFn: getMe, staleTime: 60_000 });
}

export function useMe() {
  return useQuery(meQueryOptions());
}
