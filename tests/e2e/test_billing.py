"""Billing through the whole stack: Basic -> Gold -> cancelled -> Basic by Stripe's flow, with the
gateway's rate limit and the agent limit following at once, and nothing deleted on the way down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.stack import Account, Stack, start_stack
from tests.fixtures.stripe_server import FakeStripe, running_stripe, signed_webhook
from tests.services.billing.conftest import WEBHOOK_SECRET, billing_env


@pytest.fixture(scope="module")
async def stripe() -> AsyncIterator[FakeStripe]:
    async with running_stripe() as fake:
        yield fake


@pytest.fixture(scope="module")
async def stack(
    stripe: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("billing-e2e")
    # A 1 s grace period and a sweep 5 times a second, so lapses happen within the test.
    env = billing_env(
        stripe, KIBITZ_BILLING_GRACE_PERIOD_SECONDS="1", KIBITZ_BILLING_SWEEP_SECONDS="0.2"
    )
    async with start_stack(
        ["auth", "tenants", "agents", "billing", "gateway"], data_dir=data_dir, env=env
    ) as running:
        yield running


async def deliver(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Stripe's webhooks, to the public address (the gateway), signed."""
    for event in events:
        payload = json.dumps(event).encode()
        answer = await stack.http.post(
            f"{stack.entry}/billing/webhook",
            content=payload,
            headers=signed_webhook(payload, WEBHOOK_SECRET),
        )
        assert answer.status_code == 200, answer.text


async def rate_limit(stack: Stack, account: Account) -> str:
    """The plan's requests/min, as the gateway states it on a request that costs model work
    (reads count against a per-user limit instead). The empty body is refused by agents, after
    the gateway has counted it."""
    answer = await stack.http.post(
        f"{stack.entry}/agents/respond", headers=account.headers, json={}
    )
    assert answer.status_code == 422, answer.text
    return answer.headers["ratelimit-limit"]


async def wait_for_rate_limit(stack: Stack, account: Account, limit: str) -> None:
    """The limit reaches the gateway through two events (billing -> tenants -> gateway)."""
    seen = ""
    for _ in range(100):
        seen = await rate_limit(stack, account)
        if seen == limit:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway kept {seen}, expected {limit}")


async def buy(stack: Stack, stripe: FakeStripe, account: Account, plan: str) -> str:
    started = await stack.http.post(
        f"{stack.entry}/billing/checkout", headers=account.headers, json={"plan": plan}
    )
    assert started.status_code == 200, started.text
    events = stripe.complete_checkout(started.json()["url"].rsplit("/", 1)[1])
    await deliver(stack, events)
    return str(events[0]["data"]["object"]["id"])


async def create_agent(stack: Stack, account: Account, name: str) -> httpx.Response:
    return await stack.http.post(
        f"{stack.entry}/agents/create",
        headers=account.headers,
        json={"name": name, "llm_provider": "echo", "model": "echo"},
    )


async def test_basic_to_gold_to_cancelled_to_basic_with_every_limit_following(
    stack: Stack, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    assert await rate_limit(stack, owner) == "60"
    refused = await stack.http.post(
        f"{stack.entry}/tenants/subscribe", headers=owner.headers, json={"plan": "gold"}
    )
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/billing-required")

    subscription_id = await buy(stack, stripe, owner, "gold")
    await wait_for_rate_limit(stack, owner, "1200")
    for number in range(5):  # Basic allows 3
        created = await create_agent(stack, owner, f"Agent {number}")
        assert created.status_code == 201, created.text

    await deliver(stack, stripe.cancel_at_period_end(subscription_id))
    await asyncio.sleep(0.3)
    assert await rate_limit(stack, owner) == "1200"

    await deliver(stack, stripe.end_period(subscription_id))
    await wait_for_rate_limit(stack, owner, "60")
    agents = await stack.http.get(f"{stack.entry}/agents/my", headers=owner.headers)
    assert len(agents.json()["items"]) == 5  # nothing deleted
    over = await create_agent(stack, owner, "One too many")
    assert over.status_code == 403, over.text
    for agent in agents.json()["items"][:3]:
        deleted = await stack.http.delete(
            f"{stack.entry}/agents/{agent['id']}", headers=owner.headers
        )
        assert deleted.status_code == 204
    assert (await create_agent(stack, owner, "Back under the limit")).status_code == 201


async def test_an_unpaid_renewal_returns_the_tenant_to_basic_after_the_grace_period(
    stack: Stack, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    subscription_id = await buy(stack, stripe, owner, "premium")
    await wait_for_rate_limit(stack, owner, "300")
    await deliver(stack, stripe.fail_renewal(subscription_id))
    view = await stack.http.get(f"{stack.entry}/billing/subscription", headers=owner.headers)
    assert view.json()["status"] == "past_due"
    # Nothing but the clock: billing's sweep notices the grace period (1 s here) ran out.
    await wait_for_rate_limit(stack, owner, "60")
    plan = await stack.http.get(f"{stack.entry}/tenants/plan", headers=owner.headers)
    assert plan.json()["plan"] == "basic"


async def test_the_webhook_is_public_but_refuses_an_unsigned_event(stack: Stack) -> None:
    answer = await stack.http.post(
        f"{stack.entry}/billing/webhook", content=b'{"id": "evt_x", "object": "event"}'
    )
    assert answer.status_code == 400
    assert answer.json()["type"].endswith("/invalid-signature")
    other = await stack.http.get(f"{stack.entry}/billing/subscription")
    assert other.status_code == 401
