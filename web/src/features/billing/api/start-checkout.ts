import { useMutation } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/billing";
import { safeUrl } from "@/lib/safe-url";

type Redirect = components["schemas"]["RedirectRead"];

/** POST /billing/checkout {plan}: a Stripe Checkout session for a paid plan; its URL. */
export function startCheckout(plan: string): Promise<Redirect> {
  const body: components["schemas"]["CheckoutRequest"] = { plan };
  return apiRequest<Redirect>("/billing/checkout", { method: "POST", body });
}

/** Start a checkout and send the browser to Stripe's page. */
export function useStartCheckout() {
  return useMutation({
    mutationFn: startCheckout,
    onSuccess: ({ url }) => {
      const target = safeUrl(url);
      if (target) window.location.assign(target);
    },
  });
}
