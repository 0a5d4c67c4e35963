"""Tenants and billing: paid plans only through Stripe when billing is on; billing's plan changes
applied once, in order of their sequence, whatever the tenant uses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from kibitz.contracts.events import SubscriptionChanged
from kibitz.kit.events import EventEnvelope
from tests.fixtures.stack import Account, Stack, start_stack
from tests.fixtures.stripe_server import running_stripe
from tests.services.billing.conftest import billing_env


async def subscribe(stack: Stack, account: Account, plan: str) -> tuple[int, dict[str, object]]:
    answer = await stack.http.post(
        f"{stack.url('tenants')}/tenants/subscribe", headers=account.headers, json={"plan": plan}
    )
    return answer.status_code, answer.json()


async def plan_of(stack: Stack, account: Account) -> str:
    answer = await stack.http.get(f"{stack.url('tenants')}/tenants/plan", headers=account.headers)
    return str(answer.json()["plan"])


async def test_with_billing_on_subscribing_to_a_paid_plan_is_a_409_pointing_at_checkout(
    tmp_path: Path,
) -> None:
    async with (
        running_stripe() as stripe,
        start_stack(
            ["auth", "tenants", "billing"], data_dir=tmp_path, env=billing_env(stripe)
        ) as stack,
    ):
        owner = await stack.register()
        for plan in ("premium", "gold"):
            status, problem = await subscribe(stack, owner, plan)
            assert status == 409
            assert str(problem["type"]).endswith("/billing-required")
            assert problem["checkout"] == "/billing/checkout"
        assert await plan_of(stack, owner) == "basic"
        # The free plan stays free to choose.
        assert (await subscribe(stack, owner, "basic"))[0] == 200


async def test_with_billing_deployed_but_off_plans_change_as_before(tmp_path: Path) -> None:
    async with start_stack(["auth", "tenants", "billing"], data_dir=tmp_path) as stack:
        owner = await stack.register()
        config = await stack.http.get(
            f"{stack.url('billing')}/billing/config", headers=owner.headers
        )
        assert config.json() == {"enabled": False, "plans": []}
        assert (await subscribe(stack, owner, "gold"))[0] == 200
        assert await plan_of(stack, owner) == "gold"
        assert (await subscribe(stack, owner, "basic"))[0] == 200
        checkout = await stack.http.post(
            f"{stack.url('billing')}/billing/checkout", headers=owner.headers, json={"plan": "gold"}
        )
        assert checkout.status_code == 409
        assert checkout.json()["type"].endswith("/billing-disabled")


async def test_billings_plan_changes_apply_once_and_never_go_back_to_an_older_one(
    tmp_path: Path,
) -> None:
    async with start_stack(["auth", "tenants"], data_dir=tmp_path) as stack:
        owner = await stack.register()
        tenant_id = uuid.UUID(owner.tenant_id)
        bus = stack.running.platform.bus

        def change(plan: str, sequence: int) -> EventEnvelope:
            return EventEnvelope.wrap(
                SubscriptionChanged(
                    tenant_id=tenant_id, plan=plan, status="active", sequence=sequence
                )
            )

        newer, older = change("gold", 2), change("premium", 1)
        await bus.publish(newer)
        await bus.publish(older)
        await bus.publish(newer)  # redelivered
        for _ in range(100):
            if await plan_of(stack, owner) == "gold":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert await plan_of(stack, owner) == "gold"
        inbox = stack.running.apps["tenants"].state.inbox
        handled = await inbox.handled_count("tenants")
        assert handled == 2  # the redelivery was skipped

        await bus.publish(change("basic", 3))
        for _ in range(100):
            if await plan_of(stack, owner) == "basic":
                break
            await asyncio.sleep(0.05)
        assert await plan_of(stack, owner) == "basic"
