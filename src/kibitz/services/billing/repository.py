"""Every query of the billing service; each takes its tenant scope as an argument."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.billing.models import Customer, Invoice, Subscription, WebhookEvent

# Statuses in which a subscription may still lose its plan as time passes (grace, period end).
_TIME_BOUND = ("past_due", "unpaid")
_LIVE = ("active", "trialing", "past_due", "unpaid")


def _insert(session: AsyncSession, model: Any) -> Any:
    """The dialect's INSERT (both support ON CONFLICT DO NOTHING)."""
    assert session.bind is not None
    if session.bind.dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def record_event(
    session: AsyncSession, *, event_id: str, event_type: str, created: datetime, now: datetime
) -> bool:
    """Log a Stripe event id; False when it was logged before (a redelivery)."""
    statement = (
        _insert(session, WebhookEvent)
        .values(event_id=event_id, type=event_type, stripe_created=created, received_at=now)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def event_logged(session: AsyncSession, *, event_id: str) -> bool:
    """Whether the event id is in the log."""
    return await session.get(WebhookEvent, event_id) is not None


async def get_customer(session: AsyncSession, *, tenant_id: uuid.UUID) -> Customer | None:
    """The tenant's billing record."""
    return await session.get(Customer, tenant_id)


async def get_customer_by_stripe_id(
    session: AsyncSession, *, stripe_customer_id: str
) -> Customer | None:
    """The billing record of a Stripe customer."""
    found = await session.execute(
        select(Customer).where(Customer.stripe_customer_id == stripe_customer_id)
    )
    return found.scalar_one_or_none()


async def claim_customer(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    stripe_customer_id: str,
    free_plan: str,
    now: datetime,
) -> Customer:
    """The tenant's billing record, made with this Stripe customer unless it exists (two
    concurrent checkouts both end here with the one customer Stripe's idempotency gave them)."""
    await session.execute(
        _insert(session, Customer)
        .values(
            tenant_id=tenant_id,
            stripe_customer_id=stripe_customer_id,
            announced_plan=free_plan,
            announced_status="none",
            sequence=0,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    customer = await session.get(Customer, tenant_id, populate_existing=True)
    assert customer is not None
    return customer


async def get_subscription(
    session: AsyncSession, *, stripe_subscription_id: str
) -> Subscription | None:
    """A stored subscription by its Stripe id."""
    return await session.get(Subscription, stripe_subscription_id)


async def add_subscription(session: AsyncSession, subscription: Subscription) -> None:
    """Store a subscription seen for the first time."""
    session.add(subscription)
    await session.flush()


async def tenant_subscriptions(
    session: AsyncSession, *, tenant_id: uuid.UUID
) -> list[Subscription]:
    """The tenant's subscriptions, newest first."""
    found = await session.execute(
        select(Subscription)
        .where(Subscription.tenant_id == tenant_id)
        .order_by(Subscription.stripe_created.desc(), Subscription.stripe_subscription_id.desc())
    )
    return list(found.scalars())


async def tenants_with_time_bound_subscriptions(session: AsyncSession) -> list[uuid.UUID]:
    """Tenants whose plan may run out with time: a payment overdue, or a cancelled period."""
    found = await session.execute(
        select(Subscription.tenant_id)
        .where(
            or_(
                Subscription.status.in_(_TIME_BOUND),
                and_(Subscription.cancel_at_period_end, Subscription.status.in_(_LIVE)),
            )
        )
        .distinct()
    )
    return list(found.scalars())


async def get_invoice(session: AsyncSession, *, stripe_invoice_id: str) -> Invoice | None:
    """A stored invoice by its Stripe id."""
    return await session.get(Invoice, stripe_invoice_id)


async def add_invoice(session: AsyncSession, invoice: Invoice) -> None:
    """Store an invoice seen for the first time."""
    session.add(invoice)
    await session.flush()


async def list_invoices(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[Invoice]:
    """The tenant's invoices, newest first, after the (created, id) of the previous page."""
    statement = select(Invoice).where(Invoice.tenant_id == tenant_id)
    if before is not None:
        created, invoice_id = before
        statement = statement.where(
            or_(
                Invoice.stripe_created < created,
                and_(Invoice.stripe_created == created, Invoice.stripe_invoice_id < invoice_id),
            )
        )
    found = await session.execute(
        statement.order_by(Invoice.stripe_created.desc(), Invoice.stripe_invoice_id.desc()).limit(
            limit
        )
    )
    return list(found.scalars())
