"""Orchestrated chats end to end through the gateway, the simulator scripting the orchestrator's
tool calls: each delegated answer a reply of its own, streamed live and stored under the
orchestrator's reply; the orchestrator answers with their results. Bounds, a delegate failing
mid-turn, and an orchestrator that cannot call tools."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.chat.world import Member, SseEvent, World, chat_world, read_sse, reply_finished

from kibitz.services.chat.models import Message, MessageStatus, utcnow
from kibitz.services.chat.replies.orders import ReplyOrder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.service import ChatService

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "echo": "echo"}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The stack behind the gateway; both official APIs are the simulator."""
    async with chat_world(tmp_path, gateway=True) as running:
        yield running


@pytest.fixture
async def one_delegation(tmp_path: Path) -> AsyncIterator[World]:
    """The same, with at most one delegation per turn."""
    env = {"KIBITZ_CHAT_MAX_DELEGATIONS_PER_TURN": "1"}
    async with chat_world(tmp_path, gateway=True, env=env) as running:
        yield running


@pytest.fixture
async def two_delegations(tmp_path: Path) -> AsyncIterator[World]:
    """The stack behind the gateway, with at most two delegations per turn."""
    env = {"KIBITZ_CHAT_MAX_DELEGATIONS_PER_TURN": "2"}
    async with chat_world(tmp_path, gateway=True, env=env) as running:
        yield running


def ask(tool: str, task: str) -> str:
    """A simulator marker: the model calls `tool` with this task."""
    # `[` escaped in the JSON: the marker of a fault meant for the delegate is not one for the
    # orchestrator, whose message holds it.
    arguments = json.dumps({"task": task}).replace("[", "\\u005b")
    return f"[sim:tool={tool};args={arguments}]"


async def agent(world: World, member: Member, name: str, provider: str, instructions: str) -> str:
    response = await world.http.post(
        world.url("/agents/create"),
        headers=member.headers,
        json={
            "name": name,
            "llm_provider": provider,
            "model": MODELS[provider],
            "instructions": instructions,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def gold_member(world: World) -> Member:
    member = await world.member()
    response = await world.http.post(
        world.url("/tenants/subscribe"), headers=member.headers, json={"plan": "gold"}
    )
    assert response.status_code == 200, response.text
    return member


async def orchestrated_chat(world: World, member: Member, agent_ids: list[str]) -> Any:
    return await world.http.post(
        world.url("/chat/chats"),
        headers=member.headers,
        json={"agent_ids": agent_ids, "mode": "orchestrated"},
    )


async def lead_with_two_delegates(world: World) -> tuple[Member, tuple[str, str, str], str]:
    """A Gold member's orchestrated chat: Lead consults Researcher and Critic (all `openai`)."""
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", "openai", "Coordinate.")
    researcher = await agent(world, alice, "Researcher", "openai", "Research.")
    critic = await agent(world, alice, "Critic", "openai", "Criticise.")
    chat_id = (await orchestrated_chat(world, alice, [lead, researcher, critic])).json()["id"]
    return alice, (lead, researcher, critic), str(chat_id)


async def turn(world: World, member: Member, chat_id: str, content: str) -> list[SseEvent]:
    """Send in the chat and read its stream until the orchestrator's reply ends."""
    async with world.stream(member, chat_id) as stream:
        # Subscribed once the head is in (the body's first step subscribes; the delegations
        # begin at least one model call after the send).
        assert stream.status_code == 200
        sent = await world.send(member, content, chat_id=chat_id)
        assert sent.status_code == 201, sent.text
        body = sent.json()
        assert [m["id"] for m in body["agent_messages"]] == [body["agent_message"]["id"]]
        events = await asyncio.wait_for(
            read_sse(stream, until=reply_finished(body["agent_message"]["id"])), 30
        )
    return events


async def history(world: World, member: Member, chat_id: str) -> list[dict[str, Any]]:
    response = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=member.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def delegations(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message for message in messages if message["delegated"]]


@pytest.mark.parametrize("orchestrator_provider", ["openai", "anthropic"])
async def test_the_orchestrator_delegates_through_tool_calls_and_answers_with_the_results(
    world: World, orchestrator_provider: str
) -> None:
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", orchestrator_provider, "Coordinate.")
    researcher = await agent(world, alice, "Map Researcher", "openai", "Find old maps.")
    critic = await agent(world, alice, "Critic", "anthropic", "Judge plans harshly.")
    created = await orchestrated_chat(world, alice, [lead, researcher, critic])
    assert created.status_code == 201, created.text
    chat_id = created.json()["id"]

    content = "Plan a trip " + ask("ask_mapresearcher", "find old maps")
    content += " " + ask("ask_critic", "judge the plan")
    events = await turn(world, alice, chat_id, content)

    messages = await history(world, alice, chat_id)
    user, reply = messages[0], next(m for m in messages if m["agent_id"] == lead)
    assert user["sender"] == "user" and reply["status"] == "complete"
    maps, judged = delegations(messages)
    assert (maps["agent_id"], judged["agent_id"]) == (researcher, critic)
    for delegated, task in ((maps, "find old maps"), (judged, "judge the plan")):
        assert delegated["parent_id"] == reply["id"] and delegated["status"] == "complete"
        assert delegated["content"].endswith(f"You said: {task}")
        # The orchestrator saw each answer (the simulator quotes tool results back).
        assert delegated["content"] in reply["content"]
    assert reply["content"].startswith("Simulated answer from the tool results")
    assert reply["delegated"] is False and reply["input_tokens"] > 0

    # Streamed live: each delegated answer opens, streams and ends before the final answer.
    order = [(e.event, (e.data.get("id") or e.data.get("message_id"))) for e in events]
    for delegated in (maps, judged):
        created_at = order.index(("message.created", delegated["id"]))
        completed_at = order.index(("message.completed", delegated["id"]))
        assert created_at < order.index(("message.delta", delegated["id"])) < completed_at
        assert completed_at < order.index(("message.completed", reply["id"]))
    opened = next(e for e in events if e.event == "message.created" and e.data["id"] == maps["id"])
    assert opened.data["delegated"] is True and opened.data["parent_id"] == reply["id"]
    assert opened.data["agent_id"] == researcher
    ended = next(e for e in events if e.event == "message.completed" and e.data["id"] == maps["id"])
    assert ended.data["delegated"] is True and ended.data["parent_id"] == reply["id"]

    # The orchestrator was offered a tool per other participant, named and described after it;
    # the delegates were offered none (depth 1) and saw only their task.
    wire = [request["body"] for request in world.simulator.requests]
    offered = [body for body in wire if body.get("tools")]
    assert len(offered) == 2  # its first call, and its answer with the results
    tools = offered[0]["tools"]
    names = [tool.get("name") or tool["function"]["name"] for tool in tools]
    assert names == ["ask_mapresearcher", "ask_critic"]
    described = json.dumps(tools)
    assert "Map Researcher" in described and "Find old maps." in described
    asked = [body for body in wire if not body.get("tools")]
    assert len(asked) == 2
    assert all("find old maps" in json.dumps(body) or "judge" in json.dumps(body) for body in asked)
    assert all("Plan a trip" not in json.dumps(body) for body in asked)


async def test_a_turn_makes_at_most_the_set_number_of_delegations(
    one_delegation: World,
) -> None:
    world = one_delegation
    alice, (lead, researcher, _), chat_id = await lead_with_two_delegates(world)

    content = ask("ask_researcher", "one") + " " + ask("ask_critic", "two")
    await turn(world, alice, chat_id, content)

    messages = await history(world, alice, chat_id)
    (only,) = delegations(messages)
    assert only["agent_id"] == researcher and only["status"] == "complete"
    reply = next(m for m in messages if m["agent_id"] == lead)
    assert reply["status"] == "complete"
    assert "Not asked: this turn has used its delegations (at most 1)" in reply["content"]
    assert only["content"] in reply["content"]


async def test_a_delegate_deleted_since_its_tool_was_last_offered_is_not_asked(
    world: World,
) -> None:
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", "openai", "Coordinate.")
    researcher = await agent(world, alice, "Researcher", "openai", "Research.")
    chat_id = (await orchestrated_chat(world, alice, [lead, researcher])).json()["id"]
    await turn(world, alice, chat_id, ask("ask_researcher", "one"))
    deleted = await world.http.delete(world.url(f"/agents/{researcher}"), headers=alice.headers)
    assert deleted.status_code in (200, 204), deleted.text

    # Offered from the descriptions read a moment ago; whom it may ask is read afresh.
    await turn(world, alice, chat_id, ask("ask_researcher", "two"))

    messages = await history(world, alice, chat_id)
    (only,) = delegations(messages)
    assert only["content"].endswith("You said: one")
    reply = [m for m in messages if m["agent_id"] == lead][-1]
    assert reply["status"] == "complete"
    assert "Researcher can no longer be asked; answer without it." in reply["content"]


async def test_an_orchestrator_retried_after_a_crash_keeps_the_turns_delegation_budget(
    two_delegations: World,
) -> None:
    world = two_delegations
    alice, (lead, researcher, critic), chat_id = await lead_with_two_delegates(world)
    content = ask("ask_researcher", "one") + " " + ask("ask_critic", "two")
    await turn(world, alice, chat_id, content)
    messages = await history(world, alice, chat_id)
    assert len(delegations(messages)) == 2
    user = messages[0]
    reply_id = uuid.UUID(next(m for m in messages if m["agent_id"] == lead)["id"])

    # Its process died after both delegations, before a word of its own answer was stored: the
    # reply is back to `pending` and empty, and its job's lease has lapsed.
    service: ChatService = world.stack.running.apps["chat"].state.chat_service
    async with service.database.transaction() as session:
        reply = await session.get(Message, reply_id)
        assert reply is not None
        reply.status, reply.content = MessageStatus.PENDING.value, ""
        order = ReplyOrder(
            message_id=reply_id,
            user_message_id=uuid.UUID(user["id"]),
            chat_id=uuid.UUID(chat_id),
            tenant_id=reply.tenant_id,
            user_id=reply.user_id,
            agent_id=uuid.UUID(lead),
            context=[{"role": "user", "content": content}],
            request_id=None,
            created_at=utcnow(),
            delegates=(uuid.UUID(researcher), uuid.UUID(critic)),
            parent_id=uuid.UUID(user["id"]),
        )
        await ReplyJobRepository(session).add(
            message_id=reply_id,
            tenant_id=reply.tenant_id,
            user_id=reply.user_id,
            payload=order.to_payload(),
            holder="dead",
            lease_seconds=0,
        )
    await asyncio.sleep(0.01)
    # The sweep's redelivery: claimed afresh, retried (nothing had streamed), asked again.
    await service.generator.handle(
        {"message_id": str(reply_id), "holder": "dead"}, redelivered=True
    )

    messages = await history(world, alice, chat_id)
    retried = next(m for m in messages if m["id"] == str(reply_id))
    assert retried["status"] == "complete"
    # The retried orchestrator asked for both delegations again and was refused both: the turn
    # made two in all, the bound, not two more.
    assert len(delegations(messages)) == 2
    assert retried["content"].count("Not asked: this turn has used its delegations") == 2


async def test_a_delegate_failing_mid_turn_is_reported_to_the_orchestrator_which_still_answers(
    world: World,
) -> None:
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", "anthropic", "Coordinate.")
    researcher = await agent(world, alice, "Researcher", "openai", "Research.")
    chat_id = (await orchestrated_chat(world, alice, [lead, researcher])).json()["id"]

    # The delegate's stream is cut after two tokens.
    content = ask("ask_researcher", "find maps [sim:fault=disconnect-after:2]")
    await turn(world, alice, chat_id, content)

    messages = await history(world, alice, chat_id)
    (failed,) = delegations(messages)
    assert failed["status"] == "failed" and failed["content"]  # what streamed is kept
    reply = next(m for m in messages if m["agent_id"] == lead)
    assert reply["status"] == "complete"
    assert "Researcher failed and could not answer" in reply["content"]
    assert f"What it wrote before that: {failed['content'].strip()}" in reply["content"]


async def test_an_orchestrator_that_cannot_call_tools_is_a_clear_422(world: World) -> None:
    alice = await gold_member(world)
    demo = await agent(world, alice, "Demo", "echo", "")
    helper = await agent(world, alice, "Helper", "openai", "Help.")

    def refused(response: Any) -> None:
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/orchestrator-cannot-call-tools")
        assert "cannot call tools" in problem["detail"] and "Demo" in problem["detail"]
        assert problem["errors"][0]["field"] == "agent_ids"

    refused(await orchestrated_chat(world, alice, [demo, helper]))
    refused(
        await world.send(alice, "hi", agent_id=None, agent_ids=[demo, helper], mode="orchestrated")
    )
    panel = await world.http.post(
        world.url("/chat/chats"),
        headers=alice.headers,
        json={"agent_ids": [demo, helper], "mode": "panel"},
    )
    assert panel.status_code == 201, panel.text
    refused(
        await world.http.patch(
            world.url(f"/chat/chats/{panel.json()['id']}"),
            headers=alice.headers,
            json={"mode": "orchestrated"},
        )
    )
    # With a tool-calling orchestrator first, the same agents may be orchestrated.
    assert (await orchestrated_chat(world, alice, [helper, demo])).status_code == 201


async def test_an_orchestrator_switched_to_echo_after_the_chat_was_made_is_refused_at_send(
    world: World,
) -> None:
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", "openai", "Coordinate.")
    helper = await agent(world, alice, "Helper", "openai", "Help.")
    chat_id = (await orchestrated_chat(world, alice, [lead, helper])).json()["id"]
    # A first turn: this chat process now knows the chat's participants and their names.
    await turn(world, alice, chat_id, "hello [sim:tokens=2]")
    stored = await history(world, alice, chat_id)

    switched = await world.http.patch(
        world.url(f"/agents/{lead}"),
        headers=alice.headers,
        json={"llm_provider": "echo", "model": "echo"},
    )
    assert switched.status_code == 200, switched.text
    refused = await world.send(alice, "and now?", chat_id=chat_id)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("/orchestrator-cannot-call-tools")
    assert problem["detail"].startswith("This chat's orchestrator, Lead, now uses echo")
    assert "cannot call tools" in problem["detail"]
    assert (problem["agent_id"], problem["agent_name"]) == (lead, "Lead")
    assert await history(world, alice, chat_id) == stored  # nothing stored

    # The same chat as a panel answers again (echo works there).
    panel = await world.http.patch(
        world.url(f"/chat/chats/{chat_id}"), headers=alice.headers, json={"mode": "panel"}
    )
    assert panel.status_code == 200, panel.text
    answered = await world.send(alice, "panel? [sim:tokens=2]", chat_id=chat_id)
    assert answered.status_code == 201, answered.text
    for reply in answered.json()["agent_messages"]:
        await world.wait_finished(alice, chat_id, reply["id"])
    # Switched back to a model that calls tools, it orchestrates again.
    back = await world.http.patch(
        world.url(f"/agents/{lead}"),
        headers=alice.headers,
        json={"llm_provider": "openai", "model": MODELS["openai"]},
    )
    assert back.status_code == 200, back.text
    orchestrated = await world.http.patch(
        world.url(f"/chat/chats/{chat_id}"), headers=alice.headers, json={"mode": "orchestrated"}
    )
    assert orchestrated.status_code == 200, orchestrated.text
    assert (await world.send(alice, "and again", chat_id=chat_id)).status_code == 201


async def test_each_delegated_answer_counts_as_a_message_and_meters_its_tokens(
    world: World,
) -> None:
    alice, _, chat_id = await lead_with_two_delegates(world)

    await turn(world, alice, chat_id, ask("ask_researcher", "one") + " " + ask("ask_critic", "two"))

    messages = await history(world, alice, chat_id)
    replies = [m for m in messages if m["sender"] == "agent"]
    assert len(replies) == 3 and all(m["output_tokens"] > 0 for m in replies)
    tokens = sum(m["input_tokens"] + m["output_tokens"] for m in replies)
    counters = await settled_usage(world, alice, lambda c: c["tokens"] >= tokens)
    # The user's message, and each delegated answer.
    assert counters == {"messages": 3, "tokens": tokens}


async def test_stopping_the_orchestrator_stops_the_delegate_it_waits_for(world: World) -> None:
    alice = await gold_member(world)
    lead = await agent(world, alice, "Lead", "openai", "Coordinate.")
    researcher = await agent(world, alice, "Researcher", "openai", "Research.")
    chat_id = (await orchestrated_chat(world, alice, [lead, researcher])).json()["id"]

    # A delegate that takes about 10 s.
    content = ask("ask_researcher", "dig [sim:tokens=200] [sim:gap-ms=50]")
    async with world.stream(alice, chat_id) as stream:
        sent = await world.send(alice, content, chat_id=chat_id)
        reply_id = sent.json()["agent_message"]["id"]

        def delegate_streams(event: SseEvent) -> bool:
            return event.event == "message.delta" and event.data["message_id"] != reply_id

        streamed = await asyncio.wait_for(read_sse(stream, until=delegate_streams), 10)
        delegate_id = streamed[-1].data["message_id"]
        stopped = await world.http.post(
            world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
        )
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "stopped"
        finished = await asyncio.wait_for(read_sse(stream, until=reply_finished(delegate_id)), 10)
    assert finished[-1].event == "message.completed"
    delegated = await world.wait_finished(alice, chat_id, delegate_id, timeout=10)
    assert delegated["status"] == "stopped" and delegated["content"]


async def usage(world: World, member: Member) -> dict[str, int]:
    response = await world.http.get(world.url("/tenants/usage"), headers=member.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"messages": body["messages"]["used"], "tokens": body["tokens"]["used"]}


async def settled_usage(world: World, member: Member, until: Any) -> dict[str, int]:
    """Poll the counters until `until(counters)` (metering events are relayed asynchronously)."""
    for _ in range(200):
        counters = await usage(world, member)
        if until(counters):
            return counters
        await asyncio.sleep(0.05)
    return await usage(world, member)
