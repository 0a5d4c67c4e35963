import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type Profile, type UserPreferences, meQueryKey } from "./get-me";

export interface ProfileUpdate {
  full_name?: string | null;
  avatar_url?: string | null;
  /** Merged into the stored preferences by the users service. */
  preferences?: Partial<UserPreferences>;
}

export function updateMe(update: ProfileUpdate): Promise<Profile> {
  return apiRequest<Profile>("/users/me", { method: "PATCH", body: update });
}

export function useUpdateMe() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: updateMe,
    onSuccess: (profile) => queryClient.setQueryData(meQueryKey, profile),
  });
}
