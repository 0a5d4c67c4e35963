"""A downgrade must leave room for what the tenant already has, agents included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kibitz.kit.http import INTERNAL_TOKEN_HEADER
from tests.fixtures.stack import Account, Stack, start_stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("downgrade")
    async with start_stack(["auth", "tenants", "agents"], data_dir=data_dir) as running:
        yield running


async def subscribe(stack: Stack, account: Account, plan: str) -> httpx.Response:
    return await stack.http.post(
        f"{stack.url('tenants')}/tenants/subscribe", headers=account.headers, json={"plan": plan}
    )


async def create_echo_agents(stack: Stack, account: Account, count: int) -> None:
    for number in range(count):
        created = await stack.http.post(
            f"{stack.url('agents')}/agents/create",
            headers=account.headers,
            json={"name": f"Echo {number}", "llm_provider": "echo", "model": "echo"},
        )
        assert created.status_code == 201, created.text


async def test_a_downgrade_below_the_tenants_agent_count_is_refused(stack: Stack) -> None:
    owner = await stack.register()
    assert (await subscribe(stack, owner, "premium")).status_code == 200
    await create_echo_agents(stack, owner, 4)  # basic allows 3

    refused = await subscribe(stack, owner, "basic")
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["exceeded"] == [{"limit": "agents", "used": 4, "allowed": 3}]
    plan = await stack.http.get(f"{stack.url('tenants')}/tenants/plan", headers=owner.headers)
    assert plan.json()["plan"] == "premium"


async def test_a_downgrade_that_fits_the_agents_goes_through(stack: Stack) -> None:
    owner = await stack.register()
    assert (await subscribe(stack, owner, "premium")).status_code == 200
    await create_echo_agents(stack, owner, 3)
    assert (await subscribe(stack, owner, "basic")).status_code == 200


async def test_the_agent_count_route_is_for_services_only(stack: Stack) -> None:
    owner = await stack.register()
    route = f"{stack.url('agents')}/agents/internal/tenants/{owner.tenant_id}/agent-count"
    assert (await stack.http.get(route, headers=owner.headers)).status_code == 403
    token = stack.running.platform.internal_token
    counted = await stack.http.get(route, headers={INTERNAL_TOKEN_HEADER: token})
    assert counted.json() == {"tenant_id": owner.tenant_id, "agents": 0}
