"""The billing service's tables: customers, subscriptions, invoices, the webhook log, outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kibitz.kit.events import define_outbox_table


class Base(DeclarativeBase):
    """Metadata of the billing database (and only it)."""


class Customer(Base):
    """A tenant's Stripe customer (one per tenant) and the plan last announced for the tenant."""

    __tablename__ = "customers"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    # What tenants was last told (`billing.subscription_changed`), and how many times.
    announced_plan: Mapped[str] = mapped_column(String(50))
    announced_status: Mapped[str] = mapped_column(String(30))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Subscription(Base):
    """A Stripe subscription as Stripe last described it."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_tenant_created", "tenant_id", "stripe_created"),)

    stripe_subscription_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    price_id: Mapped[str | None] = mapped_column(String(255))
    # The paid plan its price buys (None: a price no plan maps to).
    plan: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30), index=True)
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    # When a payment first failed (the grace period runs from here); None while paid up.
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stripe_created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Invoice(Base):
    """A Stripe invoice of a tenant, as its webhooks described it."""

    __tablename__ = "invoices"
    __table_args__ = (Index("ix_invoices_tenant_created", "tenant_id", "stripe_created"),)

    stripe_invoice_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(10))
    hosted_invoice_url: Mapped[str | None] = mapped_column(String(2000))
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stripe_created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookEvent(Base):
    """Every Stripe event handled, by id: a redelivery finds its row and does nothing."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    stripe_created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


outbox_table = define_outbox_table(Base.metadata)
