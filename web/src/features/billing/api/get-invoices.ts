import { useQuery } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import type { components } from "@/lib/api-schema/billing";

export type Invoice = components["schemas"]["InvoiceRead"];
export type InvoicePage = components["schemas"]["InvoicePage"];

/** GET /billing/invoices: the organisation's invoices, newest first (owners and admins). */
export function getInvoices(): Promise<InvoicePage> {
  return apiRequest<InvoicePage>("/billing/invoices", { query: { limit: 24 } });
}

export function useInvoices(enabled: boolean) {
  return useQuery({ queryKey: ["billing", "invoices"], queryFn: getInvoices, enabled, staleTime: 0 });
}
