import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { endSession } from "@/lib/auth-session";

/** DELETE /auth/account: the password confirms it; then this browser forgets the session. */
export function useDeleteAccount() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (password: string) => apiRequest<undefined>("/auth/account", { method: "DELETE", body: { password: password || undefined } }),
    onSuccess: () => {
      endSession("logout");
      queryClient.clear();
    },
  });
}
