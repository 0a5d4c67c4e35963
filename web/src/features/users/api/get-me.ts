import { queryOptions, useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/users";

type Schemas = components["schemas"];

/**
 * The stored preferences. The users service documents them as a free-form object on read, so
 * their keys are taken from what a PATCH may set (`PreferencesPatch`), plus anything else.
 */
export type UserPreferences = Schemas["PreferencesPatch"] & { [key: string]: unknown };
export type Subscription = Schemas["Subscription"];

/** GET /users/me. */
export type Profile = Omit<Schemas["ProfileRead"], "preferences"> & { preferences: UserPreferences };

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
