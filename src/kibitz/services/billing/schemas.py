"""Request and response shapes of the billing service."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PlanPrice(BaseModel):
    """A paid plan and the Stripe price that buys it."""

    id: str
    price: str


class BillingConfigRead(BaseModel):
    """Whether billing is on, and the plans it sells."""

    enabled: bool
    plans: list[PlanPrice]


class BillingInternalConfig(BaseModel):
    """What other services need to know: whether paid plans go through billing, and which."""

    enabled: bool
    paid_plans: list[str]


class CheckoutRequest(BaseModel):
    """The paid plan to buy."""

    plan: str = Field(min_length=1, max_length=50)


class RedirectRead(BaseModel):
    """Where to send the browser (a Stripe-hosted page)."""

    url: str


class SubscriptionRead(BaseModel):
    """The tenant's subscription as the last webhooks described it."""

    plan: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    # Past due: the moment the tenant returns to the free plan unless a payment succeeds.
    grace_ends_at: datetime | None = None


class InvoiceRead(BaseModel):
    """One invoice (amounts in the currency's smallest unit, e.g. cents)."""

    id: str
    number: str | None
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    hosted_invoice_url: str | None
    period_start: datetime | None
    period_end: datetime | None
    created_at: datetime


class InvoicePage(BaseModel):
    """A page of invoices, newest first."""

    items: list[InvoiceRead]
    next_cursor: str | None


class WebhookAck(BaseModel):
    """The answer Stripe gets: the event was handled now, or had been before."""

    received: bool = True
    duplicate: bool = False
