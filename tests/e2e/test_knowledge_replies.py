"""Knowledge-backed replies end to end through the gateway: a user uploads documents, gives an
agent their collection, and the reply's model sees the best chunks as numbered sources while the
stored and streamed agent message carries them as citations. Another tenant's collections are
refused for its agents and never reach its replies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.chat.world import SERVICE_MODULES, World, chat_world, read_sse
from tests.services.knowledge.conftest import KNOWLEDGE_ENV

REFUNDS = (
    "# Refunds\n\nCustomers on an annual plan may ask for their money back within thirty days "
    "of purchase. After that, unused months are credited to the account."
)
OFFICE = "The Lisbon office is open from nine to six. Visitors sign in at the front desk."


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Every service behind the gateway, with knowledge, on SQLite."""
    async with chat_world(
        tmp_path, gateway=True, modules=[*SERVICE_MODULES, "knowledge"], env=KNOWLEDGE_ENV
    ) as running:
        yield running


async def _premium_user_with_collection(world: World, texts: dict[str, str]) -> dict[str, Any]:
    member = await world.member()
    subscribed = await world.http.post(
        world.url("/tenants/subscribe"), json={"plan": "premium"}, headers=member.headers
    )
    assert subscribed.status_code == 200, subscribed.text
    created = await world.http.post(
        world.url("/knowledge/collections"), json={"name": "Policies"}, headers=member.headers
    )
    assert created.status_code == 201, created.text
    collection_id = created.json()["id"]
    documents = {}
    for title, text in texts.items():
        added = await world.http.post(
            world.url(f"/knowledge/collections/{collection_id}/documents"),
            json={"title": title, "text": text},
            headers=member.headers,
        )
        assert added.status_code == 202, added.text
        documents[title] = added.json()["id"]
    deadline = time.monotonic() + 60
    for document_id in documents.values():
        while True:
            status = (
                await world.http.get(
                    world.url(f"/knowledge/documents/{document_id}"), headers=member.headers
                )
            ).json()["status"]
            if status == "indexed":
                break
            assert status != "failed" and time.monotonic() < deadline
            await asyncio.sleep(0.1)
    return {"member": member, "collection_id": collection_id, "documents": documents}


async def test_a_reply_cites_the_users_documents_through_the_gateway(world: World) -> None:
    setup = await _premium_user_with_collection(world, {"Refunds": REFUNDS, "Office": OFFICE})
    member, collection_id = setup["member"], setup["collection_id"]
    agent = await world.http.patch(
        world.url(f"/agents/{member.agent_id}"),
        json={"knowledge_collection_ids": [collection_id]},
        headers=member.headers,
    )
    assert agent.status_code == 200, agent.text
    assert agent.json()["knowledge_collection_ids"] == [collection_id]

    question = "Can I be reimbursed for my yearly subscription?"
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": question, "agent_id": member.agent_id},
        headers={**member.headers, "Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 201
        events = await read_sse(response)
    completed = events[-1]
    assert completed.event == "message.completed", [e.event for e in events]
    citations = completed.data["citations"]
    assert citations[0]["document_id"] == setup["documents"]["Refunds"]
    assert citations[0]["title"] == "Refunds" and "thirty days" in citations[0]["text"]
    assert set(citations[0]) == {"document_id", "title", "text", "score"}
    # The unrelated document is not similar enough to be given to the model.
    assert setup["documents"]["Office"] not in {c["document_id"] for c in citations}

    # The model was given the chunks as numbered sources in its system prompt.
    system = world.simulator.requests[-1]["body"]["messages"][0]
    assert system["role"] == "system" and "Be brief." in system["content"]
    assert "[1] Refunds" in system["content"] and "thirty days" in system["content"]

    history = await world.http.get(
        world.url(f"/chat/history/{completed.data['chat_id']}"), headers=member.headers
    )
    stored = history.json()["messages"][-1]
    assert stored["id"] == completed.data["id"] and stored["citations"] == citations
    assert history.json()["messages"][0]["citations"] == []


async def test_another_tenants_collection_never_reaches_an_agent_or_a_reply(world: World) -> None:
    owner = await _premium_user_with_collection(world, {"Refunds": REFUNDS})
    stranger = await _premium_user_with_collection(world, {"Office": OFFICE})
    member = stranger["member"]
    refused = await world.http.patch(
        world.url(f"/agents/{member.agent_id}"),
        json={"knowledge_collection_ids": [owner["collection_id"]]},
        headers=member.headers,
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["type"].endswith("/collection-not-found")
    mixed = await world.http.post(
        world.url("/agents/create"),
        json={
            "name": "Mixed",
            "llm_provider": "echo",
            "model": "echo",
            "knowledge_collection_ids": [stranger["collection_id"], owner["collection_id"]],
        },
        headers=member.headers,
    )
    assert mixed.status_code == 404, mixed.text

    accepted = await world.http.patch(
        world.url(f"/agents/{member.agent_id}"),
        json={"knowledge_collection_ids": [stranger["collection_id"]]},
        headers=member.headers,
    )
    assert accepted.status_code == 200, accepted.text
    body = (await world.send(member, "refund for an annual plan within thirty days?")).json()
    reply = await world.wait_finished(
        member, body["chat_id"], body["agent_message"]["id"], timeout=30
    )
    owner_documents = set(owner["documents"].values())
    assert reply["status"] == "complete"
    assert not {c["document_id"] for c in reply["citations"]} & owner_documents
    assert "thirty days" not in world.simulator.requests[-1]["body"]["messages"][0]["content"]


async def test_the_basic_plan_cannot_give_an_agent_collections(world: World) -> None:
    member = await world.member()
    response = await world.http.patch(
        world.url(f"/agents/{member.agent_id}"),
        json={"knowledge_collection_ids": ["01a25081-7ea0-7166-8e6a-2f162e994b90"]},
        headers=member.headers,
    )
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["type"].endswith("/feature-not-in-plan") and problem["plan"] == "basic"
    listing = await world.http.get(world.url("/knowledge/collections"), headers=member.headers)
    assert listing.status_code == 403
    assert listing.json()["upgrade_to"] == "premium"
    # Clearing is always allowed.
    cleared = await world.http.patch(
        world.url(f"/agents/{member.agent_id}"),
        json={"knowledge_collection_ids": None},
        headers=member.headers,
    )
    assert cleared.status_code == 200 and cleared.json()["knowledge_collection_ids"] == []
