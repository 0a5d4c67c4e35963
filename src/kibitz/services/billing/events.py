"""What the billing service publishes: `billing.subscription_changed` (through its outbox, from
`BillingService.announce`). It consumes no events: Stripe's webhooks are its input."""

from __future__ import annotations

from kibitz.contracts.events import SubscriptionChanged

PUBLISHED = (SubscriptionChanged.name,)
