"""The billing service: Stripe customers, subscriptions, invoices and webhooks."""
