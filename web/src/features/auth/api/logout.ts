import { useMutation, useQueryClient } from "@tanstack/react-query";
import { logout } from "@/lib/auth-session";

/** POST /auth/logout revokes the refresh token family; then every cached answer is dropped. */
export function useLogout() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: logout,
    onSettled: () => queryClient.clear(),
  });
}
