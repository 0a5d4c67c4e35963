"""Plan limits: agent count and allowed models (Basic defaults when no tenants service runs)."""

from __future__ import annotations

import uuid

from kibitz.kit.plans import TenantPlan
from kibitz.kit.platform import Platform
from kibitz.services.agents.plans import (
    agent_limit,
    allows_model,
    default_plan,
    plan_reader,
    upgrade_that_allows,
)
from tests.services.agents.conftest import AgentsApi, assert_problem


async def test_the_basic_plan_allows_three_agents_then_names_the_upgrade(agents: AgentsApi) -> None:
    account = await agents.user()
    for index in range(3):
        await agents.create_ok(account, name=f"Agent {index}")
    problem = assert_problem(await agents.create(account, name="One too many"), 403)
    assert (
        problem["limit"] == "agents"
        and problem["plan"] == "basic"
        and problem["upgrade_to"] == "premium"
    )
    assert "3 agents" in problem["detail"]
    # Another tenant is not affected.
    other = await agents.user()
    await agents.create_ok(other)


async def test_the_basic_plan_refuses_large_models_and_names_the_upgrade(agents: AgentsApi) -> None:
    account = await agents.user()
    for provider, model in (("openai", "gpt-4o"), ("anthropic", "claude-opus-4-1")):
        problem = assert_problem(
            await agents.create(account, llm_provider=provider, model=model), 403
        )
        assert (
            problem["limit"] == "models"
            and problem["plan"] == "basic"
            and problem["upgrade_to"] == "premium"
        )
    await agents.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    await agents.create_ok(
        account, llm_provider="custom", model="any-local-model", base_url=agents.sim.openai_base_url
    )


def test_plan_model_entries_match_names_classes_and_wildcards() -> None:
    plan = TenantPlan(
        plan="x", limits={"models": ["echo", "small", "openai:gpt-4o", "anthropic:*"]}
    )
    assert allows_model(plan, provider="openai", model="gpt-4o-mini", size_class="small")
    assert allows_model(plan, provider="openai", model="gpt-4o", size_class="large")
    assert allows_model(plan, provider="anthropic", model="claude-opus-4-1", size_class="large")
    assert not allows_model(plan, provider="openai", model="gpt-5", size_class="large")
    assert allows_model(
        TenantPlan(plan="gold", limits={"models": ["*"]}),
        provider="openai",
        model="gpt-5",
        size_class="large",
    )
    assert not allows_model(
        TenantPlan(plan="none", limits={}), provider="echo", model="echo", size_class="echo"
    )


def test_upgrades_come_from_the_default_catalogue() -> None:
    assert upgrade_that_allows("basic", lambda plan: agent_limit(plan) > 3) == "premium"
    assert upgrade_that_allows("premium", lambda plan: agent_limit(plan) > 20) == "gold"
    assert upgrade_that_allows("gold", lambda plan: True) is None
    assert upgrade_that_allows("custom-plan", lambda plan: True) is None


async def test_without_a_tenants_service_every_tenant_is_on_basic() -> None:
    reader = plan_reader(Platform(), cache_seconds=5)
    plan = await reader.current(uuid.uuid4())
    assert plan == default_plan("basic") and agent_limit(plan) == 3
    await reader.aclose()


async def test_concurrent_creates_never_exceed_the_agent_limit(agents: AgentsApi) -> None:
    import asyncio

    account = await agents.user()
    responses = await asyncio.gather(*(agents.create(account, name=f"Racer {i}") for i in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 3 + [403] * 5
    listed = await agents.http.get(f"{agents.url}/agents/my", headers=account.headers)
    assert len(listed.json()["items"]) == 3
