"""Fixtures of the billing tests: a local Stripe, auth + tenants + billing on loopback, helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from kibitz.services.billing.service import BillingService
from tests.fixtures.stack import Account, Stack, start_stack
from tests.fixtures.stripe_server import FakeStripe, running_stripe, signed_webhook

WEBHOOK_SECRET = "whsec_test_kibitz_webhooks"
PRICES = {"premium": "price_premium", "gold": "price_gold"}


def billing_env(stripe: FakeStripe, **extra: str) -> dict[str, str]:
    """The settings that turn billing on against the local Stripe."""
    return {
        "KIBITZ_BILLING_STRIPE_SECRET_KEY": stripe.api_key,
        "KIBITZ_BILLING_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KIBITZ_BILLING_PRICES": json.dumps(PRICES),
        "KIBITZ_BILLING_STRIPE_API_BASE": stripe.base_url,
        "KIBITZ_BILLING_PUBLIC_URL": "http://kibitz.test",
        **extra,
    }


@pytest.fixture(scope="module")
async def stripe() -> AsyncIterator[FakeStripe]:
    """A local Stripe shared by a module's tests."""
    async with running_stripe() as fake:
        yield fake


@pytest.fixture(scope="module")
async def stack(
    stripe: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Auth, tenants and billing (on, against the local Stripe) on SQLite."""
    data_dir = tmp_path_factory.mktemp("billing")
    async with start_stack(
        ["auth", "tenants", "billing"], data_dir=data_dir, env=billing_env(stripe)
    ) as running:
        yield running


class Billing:
    """Calls billing as a user and as Stripe, and drives the local Stripe's pages."""

    def __init__(self, stack: Stack, stripe: FakeStripe) -> None:
        self.stack = stack
        self.stripe = stripe
        self.http = stack.http
        self.base = stack.url("billing")

    @property
    def service(self) -> BillingService:
        """The billing service object running in this process."""
        service: BillingService = self.stack.running.apps["billing"].state.billing_service
        return service

    async def get(self, path: str, account: Account, **kwargs: Any) -> httpx.Response:
        return await self.http.get(f"{self.base}{path}", headers=account.headers, **kwargs)

    async def post(self, path: str, account: Account, **kwargs: Any) -> httpx.Response:
        return await self.http.post(f"{self.base}{path}", headers=account.headers, **kwargs)

    async def checkout(self, account: Account, plan: str = "gold") -> httpx.Response:
        return await self.post("/billing/checkout", account, json={"plan": plan})

    async def deliver(
        self,
        event: dict[str, Any],
        *,
        secret: str = WEBHOOK_SECRET,
        timestamp: int | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        """POST one event to the webhook, signed as Stripe signs it (`body` replaces what was
        signed, to tamper with it)."""
        payload = json.dumps(event).encode()
        headers = signed_webhook(payload, secret, timestamp=timestamp)
        return await self.http.post(
            f"{self.base}/billing/webhook", content=body or payload, headers=headers
        )

    async def deliver_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            answer = await self.deliver(event)
            assert answer.status_code == 200, answer.text

    async def subscribe(self, account: Account, plan: str = "gold") -> str:
        """Buy `plan` the whole way (checkout, payment, webhooks); the subscription id."""
        started = await self.checkout(account, plan)
        assert started.status_code == 200, started.text
        session_id = started.json()["url"].rsplit("/", 1)[1]
        events = self.stripe.complete_checkout(session_id)
        await self.deliver_all(events)
        return str(events[0]["data"]["object"]["id"])

    async def tenant_plan(self, account: Account) -> str:
        response = await self.http.get(
            f"{self.stack.url('tenants')}/tenants/plan", headers=account.headers
        )
        assert response.status_code == 200, response.text
        return str(response.json()["plan"])

    async def wait_for_plan(self, account: Account, plan: str) -> None:
        """Wait until tenants has applied the plan (the event travels through the bus)."""
        seen = ""
        for _ in range(100):
            seen = await self.tenant_plan(account)
            if seen == plan:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the tenant stayed on {seen!r}, expected {plan!r}")

    async def expire_lapsed(self, *, now: datetime) -> None:
        """Run billing's sweep as if it were `now`."""
        database = self.stack.running.apps["billing"].state.database
        async with database.transaction() as session:
            await self.service.expire_lapsed(session, now=now)


@pytest.fixture
def billing(stack: Stack, stripe: FakeStripe) -> Billing:
    """A client of the billing service and of the local Stripe."""
    return Billing(stack, stripe)


async def team(stack: Stack) -> tuple[Account, Account]:
    """An owner and a member of one new tenant."""
    owner = await stack.register()
    invited = await stack.http.post(
        f"{stack.url('tenants')}/tenants/invites", headers=owner.headers, json={"role": "member"}
    )
    assert invited.status_code == 201, invited.text
    member = await stack.register(invite_code=invited.json()["code"])
    return owner, member
