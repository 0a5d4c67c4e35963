"""Business rules of billing: checkout, the portal, and Stripe's webhooks driving the plan.

Stripe is the source of truth. A webhook is a notice that something changed: the subscription it
names is read back from Stripe and stored as Stripe holds it *now*, so events arriving late, twice
or out of order all end in the same state. The plan a tenant gets follows from that stored state
and the clock (a grace period for an unpaid subscription), and reaches the tenants service as
`billing.subscription_changed` through the outbox whenever it changes. Flushes only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import SubscriptionChanged
from kibitz.kit.events import Outbox
from kibitz.kit.jwt import Principal
from kibitz.services.billing import repository
from kibitz.services.billing.errors import (
    AlreadySubscribed,
    BillingDisabled,
    NoCustomerYet,
    RoleRequired,
    UnknownPaidPlan,
)
from kibitz.services.billing.models import Customer, Invoice, Subscription
from kibitz.services.billing.stripe_api import StripeApi

logger = structlog.get_logger("kibitz.billing")

MANAGERS = ("owner", "admin")
PAID_UP = frozenset({"active", "trialing"})
OVERDUE = frozenset({"past_due", "unpaid"})
# An invoice in one of these states does not go back to an earlier one (a late, older snapshot).
SETTLED_INVOICE = frozenset({"paid", "void", "uncollectible"})
# 10 min: a second click on "Upgrade" within it gets the same Checkout session back.
_CHECKOUT_WINDOW_SECONDS = 600


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def from_epoch(seconds: Any) -> datetime | None:
    """Stripe's times are Unix seconds."""
    return datetime.fromtimestamp(int(seconds), UTC) if seconds is not None else None


@dataclass(frozen=True)
class PlanState:
    """What a tenant pays for at a moment: the plan, and the subscription's status."""

    plan: str
    status: str
    subscription: Subscription | None


class BillingService:
    """Rules of the billing domain."""

    def __init__(
        self,
        *,
        stripe: StripeApi | None,
        outbox: Outbox,
        prices: dict[str, str],
        free_plan: str,
        public_url: str,
        grace_period: timedelta,
    ) -> None:
        self.stripe = stripe
        self.outbox = outbox
        self.prices = dict(prices)
        self.plan_of_price = {price: plan for plan, price in prices.items()}
        self.free_plan = free_plan
        self.public_url = public_url.rstrip("/")
        self.grace_period = grace_period

    @property
    def enabled(self) -> bool:
        """Whether billing talks to Stripe at all."""
        return self.stripe is not None

    def _stripe(self) -> StripeApi:
        if self.stripe is None:
            raise BillingDisabled()
        return self.stripe

    def config(self) -> dict[str, Any]:
        """Whether billing is on, and the plans it sells with their Stripe prices."""
        if not self.enabled:
            return {"enabled": False, "plans": []}
        return {
            "enabled": True,
            "plans": [{"id": plan, "price": price} for plan, price in self.prices.items()],
        }

    def internal_config(self) -> dict[str, Any]:
        """For tenants: whether paid plans go through billing, and which plans are paid."""
        return {"enabled": self.enabled, "paid_plans": list(self.prices) if self.enabled else []}

    # -- checkout and portal ----------------------------------------------------------------

    async def checkout(
        self, session: AsyncSession, *, principal: Principal, plan: str, now: datetime
    ) -> str:
        """A Checkout session buying `plan` for the caller's tenant (owner/admin); its URL."""
        stripe = self._stripe()
        _require_manager(principal)
        price = self.prices.get(plan)
        if price is None:
            raise UnknownPaidPlan(plan, list(self.prices))
        current = await self.plan_state(session, tenant_id=principal.tenant_id, now=now)
        if current.plan != self.free_plan:
            raise AlreadySubscribed(current.plan)
        customer = await self._customer(session, tenant_id=principal.tenant_id, now=now)
        window = int(now.timestamp()) // _CHECKOUT_WINDOW_SECONDS
        return await stripe.create_checkout_session(
            customer_id=customer.stripe_customer_id,
            price_id=price,
            tenant_id=str(principal.tenant_id),
            plan=plan,
            success_url=f"{self.public_url}/settings?billing=success",
            cancel_url=f"{self.public_url}/settings?billing=cancelled",
            idempotency_key=f"kibitz-checkout-{principal.tenant_id}-{plan}-{window}",
        )

    async def portal(self, session: AsyncSession, *, principal: Principal) -> str:
        """A customer portal session for the caller's tenant (owner/admin); its URL."""
        stripe = self._stripe()
        _require_manager(principal)
        customer = await repository.get_customer(session, tenant_id=principal.tenant_id)
        if customer is None:
            raise NoCustomerYet()
        return await stripe.create_portal_session(
            customer_id=customer.stripe_customer_id, return_url=f"{self.public_url}/settings"
        )

    async def _customer(
        self, session: AsyncSession, *, tenant_id: uuid.UUID, now: datetime
    ) -> Customer:
        existing = await repository.get_customer(session, tenant_id=tenant_id)
        if existing is not None:
            return existing
        # One key per tenant: a retry, or a concurrent checkout, gets the same customer back.
        stripe_customer_id = await self._stripe().create_customer(
            tenant_id=str(tenant_id), email=None, idempotency_key=f"kibitz-customer-{tenant_id}"
        )
        return await repository.claim_customer(
            session,
            tenant_id=tenant_id,
            stripe_customer_id=stripe_customer_id,
            free_plan=self.free_plan,
            now=now,
        )

    # -- reading ----------------------------------------------------------------------------

    def effective_plan(self, subscription: Subscription, *, now: datetime) -> str:
        """The plan a subscription gives its tenant at `now`."""
        if subscription.plan is None:
            return self.free_plan
        period_end = as_utc(subscription.current_period_end)
        if subscription.status in PAID_UP:
            # Stripe ends a cancelled subscription at its period end; this holds if that
            # webhook is late.
            if subscription.cancel_at_period_end and period_end is not None and period_end <= now:
                return self.free_plan
            return subscription.plan
        if subscription.status in OVERDUE:
            grace_ends = self.grace_ends_at(subscription)
            if grace_ends is not None and now < grace_ends:
                return subscription.plan
        return self.free_plan

    def grace_ends_at(self, subscription: Subscription) -> datetime | None:
        """When an overdue subscription stops giving its plan (None while paid up)."""
        since = as_utc(subscription.past_due_since)
        if subscription.status not in OVERDUE or since is None:
            return None
        return since + self.grace_period

    async def plan_state(
        self, session: AsyncSession, *, tenant_id: uuid.UUID, now: datetime
    ) -> PlanState:
        """What the tenant pays for now: its newest subscription that gives a paid plan, else
        its newest subscription at all (ended, unpaid), else nothing."""
        subscriptions = await repository.tenant_subscriptions(session, tenant_id=tenant_id)
        for subscription in subscriptions:
            plan = self.effective_plan(subscription, now=now)
            if plan != self.free_plan:
                return PlanState(plan, subscription.status, subscription)
        if subscriptions:
            return PlanState(self.free_plan, subscriptions[0].status, subscriptions[0])
        return PlanState(self.free_plan, "none", None)

    async def subscription_view(
        self, session: AsyncSession, *, tenant_id: uuid.UUID, now: datetime
    ) -> dict[str, Any]:
        """The tenant's subscription for `GET /billing/subscription`."""
        state = await self.plan_state(session, tenant_id=tenant_id, now=now)
        subscription = state.subscription
        return {
            "plan": state.plan,
            "status": state.status,
            "current_period_end": as_utc(subscription.current_period_end) if subscription else None,
            "cancel_at_period_end": bool(subscription and subscription.cancel_at_period_end),
            "grace_ends_at": self.grace_ends_at(subscription) if subscription else None,
        }

    async def invoices(
        self,
        session: AsyncSession,
        *,
        principal: Principal,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Invoice], str | None]:
        """A page of the caller's tenant's invoices (owner/admin), newest first."""
        _require_manager(principal)
        rows = await repository.list_invoices(
            session, tenant_id=principal.tenant_id, limit=limit + 1, before=_parse_cursor(cursor)
        )
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            created = as_utc(last.stripe_created)
            assert created is not None
            next_cursor = f"{int(created.timestamp())}:{last.stripe_invoice_id}"
        return rows[:limit], next_cursor

    # -- webhooks ---------------------------------------------------------------------------

    async def handle_webhook(
        self, session: AsyncSession, *, payload: bytes, signature: str | None, now: datetime
    ) -> bool:
        """Verify and apply one Stripe webhook; False when its event was handled before."""
        event = self._stripe().verify_event(payload, signature)
        created = from_epoch(event.created) or now
        first_time = await repository.record_event(
            session, event_id=event.id, event_type=event.type, created=created, now=now
        )
        if not first_time:
            logger.info("stripe_event_duplicate", event_id=event.id, event_type=event.type)
            return False
        data = event.data.object.to_dict(recursive=True)
        if event.type == "checkout.session.completed":
            await self._checkout_completed(session, data, now=now)
        elif event.type.startswith("customer.subscription."):
            await self.sync_subscription(session, subscription_id=str(data["id"]), now=now)
        elif event.type in ("invoice.paid", "invoice.payment_failed"):
            await self._invoice_changed(session, data, now=now)
        logger.info("stripe_event_handled", event_id=event.id, event_type=event.type)
        return True

    async def _checkout_completed(
        self, session: AsyncSession, data: dict[str, Any], *, now: datetime
    ) -> None:
        tenant_id = _uuid((data.get("metadata") or {}).get("tenant_id")) or _uuid(
            data.get("client_reference_id")
        )
        customer = data.get("customer")
        if tenant_id is not None and isinstance(customer, str):
            await repository.claim_customer(
                session,
                tenant_id=tenant_id,
                stripe_customer_id=customer,
                free_plan=self.free_plan,
                now=now,
            )
        if isinstance(data.get("subscription"), str):
            await self.sync_subscription(session, subscription_id=data["subscription"], now=now)

    async def _invoice_changed(
        self, session: AsyncSession, data: dict[str, Any], *, now: datetime
    ) -> None:
        details = (data.get("parent") or {}).get("subscription_details") or {}
        subscription_id = details.get("subscription") or data.get("subscription")
        tenant_id = await self._tenant_of(
            session,
            customer_id=data.get("customer"),
            metadata_tenant=(details.get("metadata") or {}).get("tenant_id"),
        )
        if tenant_id is None:
            logger.warning("stripe_invoice_of_unknown_tenant", invoice_id=data.get("id"))
            return
        await self._store_invoice(
            session, data, tenant_id=tenant_id, subscription_id=subscription_id
        )
        if isinstance(subscription_id, str):
            await self.sync_subscription(session, subscription_id=subscription_id, now=now)

    async def _store_invoice(
        self,
        session: AsyncSession,
        data: dict[str, Any],
        *,
        tenant_id: uuid.UUID,
        subscription_id: str | None,
    ) -> None:
        invoice = await repository.get_invoice(session, stripe_invoice_id=str(data["id"]))
        status = str(data.get("status") or "open")
        if invoice is None:
            invoice = Invoice(stripe_invoice_id=str(data["id"]), tenant_id=tenant_id)
            await repository.add_invoice(session, _fill_invoice(invoice, data, subscription_id))
        elif invoice.tenant_id == tenant_id and not (
            invoice.status in SETTLED_INVOICE and status not in SETTLED_INVOICE
        ):
            _fill_invoice(invoice, data, subscription_id)
            await session.flush()

    async def sync_subscription(
        self, session: AsyncSession, *, subscription_id: str, now: datetime
    ) -> None:
        """Store the subscription as Stripe holds it now, then re-announce its tenant's plan."""
        data = await self._stripe().retrieve_subscription(subscription_id)
        stored = await repository.get_subscription(session, stripe_subscription_id=subscription_id)
        tenant_id = (
            stored.tenant_id
            if stored is not None
            else await self._tenant_of(
                session,
                customer_id=data.get("customer"),
                metadata_tenant=(data.get("metadata") or {}).get("tenant_id"),
            )
        )
        if tenant_id is None:
            logger.warning("stripe_subscription_of_unknown_tenant", subscription=subscription_id)
            return
        items = (data.get("items") or {}).get("data") or [{}]
        price_id = (items[0].get("price") or {}).get("id")
        # Since API version 2025-03-31 the period lives on the items; before, on the subscription.
        period_end = items[0].get("current_period_end") or data.get("current_period_end")
        status = str(data.get("status") or "incomplete")
        plan = self.plan_of_price.get(price_id) if price_id else None
        if price_id and plan is None:
            logger.warning("stripe_price_without_plan", price_id=price_id)
        fields = {
            "stripe_customer_id": str(data.get("customer") or ""),
            "price_id": price_id,
            "plan": plan,
            "status": status,
            "current_period_end": from_epoch(period_end),
            "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
            "synced_at": now,
        }
        if stored is None:
            stored = Subscription(
                stripe_subscription_id=subscription_id,
                tenant_id=tenant_id,
                stripe_created=from_epoch(data.get("created")) or now,
                past_due_since=None,
                **fields,
            )
            await repository.add_subscription(session, stored)
        else:
            for name, value in fields.items():
                setattr(stored, name, value)
        # The grace period runs from when billing first heard the payment was overdue.
        if status in OVERDUE:
            stored.past_due_since = stored.past_due_since or now
        else:
            stored.past_due_since = None
        await session.flush()
        await self.announce(session, tenant_id=tenant_id, now=now)

    async def _tenant_of(
        self, session: AsyncSession, *, customer_id: Any, metadata_tenant: Any
    ) -> uuid.UUID | None:
        # The customer row is ours (made at checkout); metadata is the fallback for a customer
        # whose row is not there yet (its checkout.session.completed has not arrived).
        if isinstance(customer_id, str):
            customer = await repository.get_customer_by_stripe_id(
                session, stripe_customer_id=customer_id
            )
            if customer is not None:
                return customer.tenant_id
        return _uuid(metadata_tenant)

    async def announce(self, session: AsyncSession, *, tenant_id: uuid.UUID, now: datetime) -> None:
        """Tell tenants the tenant's plan through the outbox, if it changed since last told."""
        state = await self.plan_state(session, tenant_id=tenant_id, now=now)
        customer = await repository.get_customer(session, tenant_id=tenant_id)
        if customer is None:
            if state.subscription is None:
                return
            customer = await repository.claim_customer(
                session,
                tenant_id=tenant_id,
                stripe_customer_id=state.subscription.stripe_customer_id,
                free_plan=self.free_plan,
                now=now,
            )
        if (customer.announced_plan, customer.announced_status) == (state.plan, state.status):
            return
        customer.announced_plan = state.plan
        customer.announced_status = state.status
        customer.sequence += 1
        await session.flush()
        subscription = state.subscription
        await self.outbox.add(
            session,
            SubscriptionChanged(
                tenant_id=tenant_id,
                plan=state.plan,
                status=state.status,
                sequence=customer.sequence,
                current_period_end=as_utc(subscription.current_period_end)
                if subscription
                else None,
                cancel_at_period_end=bool(subscription and subscription.cancel_at_period_end),
            ),
        )
        logger.info(
            "subscription_changed", tenant_id=str(tenant_id), plan=state.plan, status=state.status
        )

    async def expire_lapsed(self, session: AsyncSession, *, now: datetime) -> None:
        """Re-announce the tenants whose plan may have run out with time (grace, period end)."""
        for tenant_id in await repository.tenants_with_time_bound_subscriptions(session):
            await self.announce(session, tenant_id=tenant_id, now=now)


def _require_manager(principal: Principal) -> None:
    if principal.role not in MANAGERS:
        raise RoleRequired(*MANAGERS)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    seconds, _, invoice_id = cursor.partition(":")
    try:
        return datetime.fromtimestamp(int(seconds), UTC), invoice_id
    except (ValueError, OverflowError, OSError):
        return None


def _fill_invoice(invoice: Invoice, data: dict[str, Any], subscription_id: Any) -> Invoice:
    invoice.stripe_subscription_id = subscription_id if isinstance(subscription_id, str) else None
    invoice.number = data.get("number")
    invoice.status = str(data.get("status") or "open")
    invoice.amount_due = int(data.get("amount_due") or 0)
    invoice.amount_paid = int(data.get("amount_paid") or 0)
    invoice.currency = str(data.get("currency") or "")
    invoice.hosted_invoice_url = data.get("hosted_invoice_url")
    invoice.period_start = from_epoch(data.get("period_start"))
    invoice.period_end = from_epoch(data.get("period_end"))
    invoice.stripe_created = from_epoch(data.get("created")) or datetime.now(UTC)
    return invoice
