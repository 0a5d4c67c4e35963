"""Stripe's webhooks: verified signatures, each event once, any order, and the plan following."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kibitz.contracts.events import SubscriptionChanged
from kibitz.kit.events import EventEnvelope
from kibitz.services.billing import repository
from tests.fixtures.stack import Account, Stack, start_stack
from tests.fixtures.stripe_server import FakeStripe
from tests.services.billing.conftest import Billing, billing_env


async def logged(billing: Billing, event_id: str) -> bool:
    database = billing.stack.running.apps["billing"].state.database
    async with database.transaction() as session:
        return await repository.event_logged(session, event_id=event_id)


@pytest.fixture
async def announced(stack: Stack) -> AsyncIterator[list[SubscriptionChanged]]:
    """Every `billing.subscription_changed` published while the test runs."""
    seen: list[SubscriptionChanged] = []

    async def collect(envelope: EventEnvelope) -> None:
        seen.append(SubscriptionChanged.model_validate(envelope.payload))

    listening = await stack.running.platform.bus.listen([SubscriptionChanged.name], handler=collect)
    yield seen
    await listening.cancel()


async def start_checkout(billing: Billing, stack: Stack, plan: str = "gold") -> tuple[Account, str]:
    owner = await stack.register()
    started = await billing.checkout(owner, plan)
    assert started.status_code == 200, started.text
    return owner, started.json()["url"].rsplit("/", 1)[1]


# -- signatures -------------------------------------------------------------------------------


async def test_a_webhook_signed_with_another_secret_is_a_400_and_stores_nothing(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner, session_id = await start_checkout(billing, stack)
    events = stripe.complete_checkout(session_id)
    for event in events:
        refused = await billing.deliver(event, secret="whsec_someone_else")
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"].endswith("/invalid-signature")
        assert not await logged(billing, event["id"])
    assert (await billing.get("/billing/subscription", owner)).json()["status"] == "none"


async def test_a_webhook_signed_too_long_ago_is_a_400(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    _, session_id = await start_checkout(billing, stack)
    event = stripe.complete_checkout(session_id)[0]
    # 5 min is the tolerance: a replay of a captured request 6 min later is refused.
    stale = await billing.deliver(event, timestamp=int(time.time()) - 360)
    assert stale.status_code == 400
    assert not await logged(billing, event["id"])
    fresh = await billing.deliver(event, timestamp=int(time.time()) - 60)
    assert fresh.status_code == 200, fresh.text
    assert await logged(billing, event["id"])


async def test_a_tampered_body_is_a_400(stack: Stack, billing: Billing, stripe: FakeStripe) -> None:
    _owner, session_id = await start_checkout(billing, stack)
    event = stripe.complete_checkout(session_id)[0]
    forged = json.loads(json.dumps(event))
    forged["data"]["object"]["metadata"]["tenant_id"] = "00000000-0000-0000-0000-000000000000"
    refused = await billing.deliver(event, body=json.dumps(forged).encode())
    assert refused.status_code == 400
    assert not await logged(billing, event["id"])


async def test_a_webhook_without_a_signature_or_with_a_garbled_one_is_a_400(
    billing: Billing,
) -> None:
    url = f"{billing.base}/billing/webhook"
    body = b'{"id": "evt_1", "object": "event"}'
    assert (await billing.http.post(url, content=body)).status_code == 400
    garbled = {"Stripe-Signature": "t=abc,v1=zzz"}
    assert (await billing.http.post(url, content=body, headers=garbled)).status_code == 400


# -- once, in any order -----------------------------------------------------------------------


async def test_a_redelivered_event_is_a_200_that_does_nothing(
    stack: Stack,
    billing: Billing,
    stripe: FakeStripe,
    announced: list[SubscriptionChanged],
) -> None:
    owner, session_id = await start_checkout(billing, stack)
    events = stripe.complete_checkout(session_id)
    await billing.deliver_all(events)
    await billing.wait_for_plan(owner, "gold")
    changes = [change for change in announced if str(change.tenant_id) == owner.tenant_id]
    assert [change.plan for change in changes] == ["gold"]
    retrieved = len([r for r in stripe.requests if r[1].startswith("/v1/subscriptions/")])

    for event in events:
        again = await billing.deliver(event)
        assert again.status_code == 200
        assert again.json() == {"received": True, "duplicate": True}
    # Not even read again from Stripe, and nothing announced twice.
    assert len([r for r in stripe.requests if r[1].startswith("/v1/subscriptions/")]) == retrieved
    assert [c for c in announced if str(c.tenant_id) == owner.tenant_id] == changes


async def test_events_arriving_out_of_order_end_in_stripes_current_state(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner, session_id = await start_checkout(billing, stack)
    created, paid, completed = stripe.complete_checkout(session_id)
    subscription_id = created["data"]["object"]["id"]
    cancelled = stripe.cancel_at_period_end(subscription_id)
    ended = stripe.end_period(subscription_id)
    # Newest first: the subscription's deletion arrives before its creation and its payment.
    await billing.deliver_all([*ended, *cancelled, completed, paid, created])
    view = (await billing.get("/billing/subscription", owner)).json()
    assert view["plan"] == "basic"
    assert view["status"] == "canceled"
    assert await billing.tenant_plan(owner) == "basic"


async def test_a_late_snapshot_of_an_active_subscription_does_not_revive_a_cancelled_one(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "gold")
    await billing.wait_for_plan(owner, "gold")
    active_snapshot = json.loads(json.dumps(stripe.subscriptions[subscription_id]))
    await billing.deliver_all(stripe.end_period(subscription_id))
    await billing.wait_for_plan(owner, "basic")
    # An "updated" event from before the deletion, delivered after it (Stripe retried it).
    late = stripe.event("customer.subscription.updated", active_snapshot)
    late["created"] -= 3600
    assert (await billing.deliver(late)).status_code == 200
    assert (await billing.get("/billing/subscription", owner)).json()["status"] == "canceled"
    assert await billing.tenant_plan(owner) == "basic"


async def test_an_older_invoice_snapshot_does_not_unpay_an_invoice(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "premium")
    failed = stripe.fail_renewal(subscription_id)
    recovered = stripe.pay_open_invoice(subscription_id)
    await billing.deliver_all([*recovered, *failed])
    invoices = (await billing.get("/billing/invoices", owner)).json()["items"]
    assert [invoice["status"] for invoice in invoices] == ["paid", "paid"]
    assert (await billing.get("/billing/subscription", owner)).json()["status"] == "active"


async def test_an_event_type_billing_does_not_use_is_acknowledged_and_logged(
    billing: Billing, stripe: FakeStripe
) -> None:
    event = stripe.event("customer.created", {"id": "cus_x", "object": "customer"})
    answer = await billing.deliver(event)
    assert answer.status_code == 200
    assert await logged(billing, event["id"])


# -- the plan following the subscription ------------------------------------------------------


async def test_a_failed_payment_keeps_the_plan_for_the_grace_period_then_basic(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "gold")
    await billing.wait_for_plan(owner, "gold")

    failed_at = datetime.now(UTC)
    await billing.deliver_all(stripe.fail_renewal(subscription_id))
    view = (await billing.get("/billing/subscription", owner)).json()
    assert view["plan"] == "gold"
    assert view["status"] == "past_due"
    grace_ends = datetime.fromisoformat(view["grace_ends_at"])
    assert timedelta(days=6.9) < grace_ends - failed_at < timedelta(days=7.1)
    [open_invoice, _] = (await billing.get("/billing/invoices", owner)).json()["items"]
    assert open_invoice["status"] == "open"

    await billing.expire_lapsed(now=failed_at + timedelta(days=6))
    assert await billing.tenant_plan(owner) == "gold"
    await billing.expire_lapsed(now=failed_at + timedelta(days=8))
    await billing.wait_for_plan(owner, "basic")

    # Stripe's next retry succeeds: the plan comes back.
    await billing.deliver_all(stripe.pay_open_invoice(subscription_id))
    await billing.wait_for_plan(owner, "gold")


async def test_an_unpaid_subscription_past_the_grace_period_leaves_the_tenant_on_basic(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "premium")
    await billing.deliver_all(stripe.fail_renewal(subscription_id))
    await billing.deliver_all(stripe.leave_unpaid(subscription_id))
    assert (await billing.get("/billing/subscription", owner)).json()["plan"] == "premium"
    await billing.expire_lapsed(now=datetime.now(UTC) + timedelta(days=30))
    await billing.wait_for_plan(owner, "basic")
    assert (await billing.get("/billing/subscription", owner)).json()["status"] == "unpaid"


async def test_a_cancellation_takes_effect_at_the_end_of_the_period(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "gold")
    await billing.wait_for_plan(owner, "gold")

    await billing.deliver_all(stripe.cancel_at_period_end(subscription_id))
    view = (await billing.get("/billing/subscription", owner)).json()
    assert view["plan"] == "gold"
    assert view["cancel_at_period_end"] is True
    await billing.expire_lapsed(now=datetime.now(UTC) + timedelta(days=1))
    assert await billing.tenant_plan(owner) == "gold"

    await billing.deliver_all(stripe.end_period(subscription_id))
    await billing.wait_for_plan(owner, "basic")
    view = (await billing.get("/billing/subscription", owner)).json()
    assert (view["plan"], view["status"]) == ("basic", "canceled")


async def test_a_cancelled_period_that_ran_out_ends_the_plan_even_before_stripes_webhook(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "gold")
    await billing.deliver_all(stripe.cancel_at_period_end(subscription_id))
    period_end = datetime.fromisoformat(
        (await billing.get("/billing/subscription", owner)).json()["current_period_end"]
    )
    await billing.expire_lapsed(now=period_end + timedelta(seconds=1))
    await billing.wait_for_plan(owner, "basic")


@pytest.mark.postgres
async def test_on_postgresql_a_subscription_starts_dedupes_and_ends(
    stripe: FakeStripe, tmp_path: Path
) -> None:
    async with start_stack(
        ["auth", "tenants", "billing"],
        data_dir=tmp_path,
        database="postgres",
        env=billing_env(stripe),
    ) as postgres_stack:
        on_postgres = Billing(postgres_stack, stripe)
        owner = await postgres_stack.register()
        subscription_id = await on_postgres.subscribe(owner, "gold")
        await on_postgres.wait_for_plan(owner, "gold")
        ended = stripe.end_period(subscription_id)
        await on_postgres.deliver_all(ended)
        again = await on_postgres.deliver(ended[0])
        assert again.json()["duplicate"] is True
        await on_postgres.wait_for_plan(owner, "basic")
        invoices = (await on_postgres.get("/billing/invoices", owner)).json()["items"]
        assert [invoice["status"] for invoice in invoices] == ["paid"]
