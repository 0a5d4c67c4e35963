import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/billing";
import { safeUrl } from "@/lib/safe-url";

type Redirect = components["schemas"]["RedirectRead"];

/** POST /billing/portal: Stripe's customer portal (payment method, plan change, cancel). */
export function openPortal(): Promise<Redirect> {
  return apiRequest<Redirect>("/billing/portal", { method: "POST" });
}

/** Open the portal and send the browser there. */
export function useOpenPortal() {
  return useMutation({
    mutationFn: openPortal,
    onSuccess: ({ url }) => {
      const target = safeUrl(url);
      if (target) window.location.assign(target);
    },
  });
}
