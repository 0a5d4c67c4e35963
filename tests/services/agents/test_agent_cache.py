"""The reply path's agent cache: scoped lookups, expiry, and invalidation on change."""

from __future__ import annotations

import uuid

from kibitz.services.agents.agent_cache import AgentCache, AgentSnapshot
from tests.services.agents.conftest import AgentsApi, assert_problem


def snapshot(**fields: object) -> AgentSnapshot:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "llm_provider": "echo",
        "model": "echo",
        "instructions": "",
        "temperature": 0.7,
        "base_url": None,
        "api_key_encrypted": None,
        **fields,
    }
    return AgentSnapshot(**values)  # type: ignore[arg-type]


def test_a_snapshot_is_found_only_by_its_owner_and_only_while_fresh() -> None:
    cache = AgentCache(ttl_seconds=60)
    agent = snapshot()
    cache.put(agent)
    assert cache.get(agent.id, tenant_id=agent.tenant_id, user_id=agent.user_id) == agent
    assert cache.get(agent.id, tenant_id=uuid.uuid4(), user_id=agent.user_id) is None
    assert cache.get(agent.id, tenant_id=agent.tenant_id, user_id=uuid.uuid4()) is None
    cache.forget(agent.id)
    assert cache.get(agent.id, tenant_id=agent.tenant_id, user_id=agent.user_id) is None
    expired = AgentCache(ttl_seconds=0)
    expired.put(agent)
    assert expired.get(agent.id, tenant_id=agent.tenant_id, user_id=agent.user_id) is None


async def test_changes_and_deletes_apply_to_the_next_reply(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account, llm_provider="openai", model="gpt-4o-mini", instructions="First."
    )
    assert "System: First." in (await api.respond(account, agent["id"])).json()["content"]
    url = f"{api.url}/agents/{agent['id']}"
    await api.http.patch(url, json={"instructions": "Second."}, headers=account.headers)
    assert "System: Second." in (await api.respond(account, agent["id"])).json()["content"]
    assert sim.requests[-1]["body"]["messages"][0]["content"] == "Second."
    await api.http.delete(url, headers=account.headers)
    assert_problem(await api.respond(account, agent["id"]), 404)
