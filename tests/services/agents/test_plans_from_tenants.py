"""Plan limits read from a running tenants service: a plan change applies to the next request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kibitz.runtime.registry import load_module
from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import start_stack
from tests.services.agents.conftest import AgentsApi, agents_env, assert_problem

pytestmark = pytest.mark.skipif(
    load_module("tenants") is None, reason="no tenants service in this build"
)


@pytest.fixture(scope="module")
async def with_tenants(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Auth, tenants and agents together."""
    data_dir = tmp_path_factory.mktemp("agents-tenants")
    async with start_stack(
        ["auth", "tenants", "agents"], data_dir=data_dir, env=agents_env(sim)
    ) as stack:
        yield AgentsApi(stack=stack, sim=sim)


async def test_upgrading_the_plan_lifts_the_model_and_agent_limits_at_once(
    with_tenants: AgentsApi,
) -> None:
    api = with_tenants
    owner = await api.user()
    problem = assert_problem(await api.create(owner, llm_provider="openai", model="gpt-4o"), 403)
    assert problem["plan"] == "basic" and problem["upgrade_to"] == "premium"
    for index in range(3):
        await api.create_ok(owner, name=f"A{index}")
    assert assert_problem(await api.create(owner), 403)["limit"] == "agents"

    subscribed = await api.http.post(
        f"{api.stack.url('tenants')}/tenants/subscribe",
        json={"plan": "premium"},
        headers=owner.headers,
    )
    assert subscribed.status_code == 200, subscribed.text
    large = await api.create_ok(owner, llm_provider="openai", model="gpt-4o")
    assert (await api.respond(owner, large["id"])).status_code == 200
    catalogue = (await api.http.get(f"{api.url}/agents/providers", headers=owner.headers)).json()
    assert catalogue["plan"] == "premium"
