import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/users";
import { type Profile, meQueryKey } from "./get-me";

/** PATCH /users/me: `preferences` is merged into the stored preferences by the users service. */
export type ProfileUpdate = components["schemas"]["ProfileUpdate"];

export function updateMe(update: ProfileUpdate): Promise<Profile> {
  return apiRequest<Profile>("/users/me", { method: "PATCH", body: update });
}

export function useUpdateMe() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: updateMe,
    // A read of the profile still on its way (the page's own load) would answer after the save
    // and put the old preferences back: it is called off, and the saved profile stands.
    onMutate: () => queryClient.cancelQueries({ queryKey: meQueryKey }),
    onSuccess: (profile) => queryClient.setQueryData(meQueryKey, profile),
  });
}
