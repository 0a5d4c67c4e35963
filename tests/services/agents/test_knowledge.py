"""Agents with knowledge collections: the reply carries the sources it was given, and a search
that cannot be made (the collection is gone) never holds the reply up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import start_stack
from tests.services.agents.conftest import AgentsApi, agents_env
from tests.services.knowledge.conftest import KNOWLEDGE_ENV, KnowledgeApi


@pytest.fixture(scope="module")
async def apis(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[tuple[AgentsApi, KnowledgeApi]]:
    """Auth, tenants, knowledge and agents."""
    data_dir = tmp_path_factory.mktemp("agents-knowledge")
    env = {**agents_env(sim), **KNOWLEDGE_ENV}
    async with start_stack(
        ["auth", "tenants", "knowledge", "agents"], data_dir=data_dir, env=env
    ) as stack:
        yield AgentsApi(stack=stack, sim=sim), KnowledgeApi(stack=stack)


async def test_a_reply_carries_its_sources_and_survives_a_search_that_fails(
    apis: tuple[AgentsApi, KnowledgeApi],
) -> None:
    agents, knowledge = apis
    owner = await knowledge.user()
    collection = await knowledge.collection(owner)
    document = await knowledge.add_text(
        owner, collection["id"], "Plants", "Water the ficus every Monday morning."
    )
    assert (await knowledge.settled(owner, document["id"]))["status"] == "indexed"
    agent = await agents.create_ok(
        owner,
        llm_provider="openai",
        model="gpt-4o-mini",
        instructions="Be brief.",
        knowledge_collection_ids=[collection["id"]],
    )
    assert agent["knowledge_collection_ids"] == [collection["id"]]

    whole = await agents.respond(owner, agent["id"], "when should the ficus get water?")
    assert whole.status_code == 200, whole.text
    citations = whole.json()["citations"]
    assert [c["document_id"] for c in citations] == [document["id"]]
    status, events = await agents.stream(owner, agent["id"], "ficus watering day?")
    assert status == 200
    done = dict(events)["done"]
    assert done["citations"][0]["title"] == "Plants"
    system = agents.sim.requests[-1]["body"]["messages"][0]["content"]
    assert "[1] Plants" in system and "Be brief." in system

    # The collection goes away (the agent still names it): replies go on, without sources.
    deleted = await knowledge.call("DELETE", f"/collections/{collection['id']}", owner)
    assert deleted.status_code == 204
    after = await agents.respond(owner, agent["id"], "when should the ficus get water?")
    assert after.status_code == 200 and "citations" not in after.json()
    assert "Sources:" not in agents.sim.requests[-1]["body"]["messages"][0]["content"]


async def test_an_agent_without_collections_answers_as_before(
    apis: tuple[AgentsApi, KnowledgeApi],
) -> None:
    agents, knowledge = apis
    owner = await knowledge.user(plan="basic")
    agent = await agents.create_ok(owner)
    assert agent["knowledge_collection_ids"] == []
    status, events = await agents.stream(owner, agent["id"], "hello")
    assert status == 200 and "citations" not in dict(events)["done"]
