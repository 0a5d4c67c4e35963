"""A reply asks agents as its sender by chat's own service credential: its job stores no token,
and a reply accepted while the sender's token was good is generated after it stopped being."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.services.chat.world import Member, World, chat_world

from kibitz.kit.http import ServiceClient
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Message, ReplyJob, utcnow
from kibitz.services.chat.replies.agent_stream import ReplyFailedError, ReplyProgress, read_reply
from kibitz.services.chat.replies.orders import ReplyOrder
from kibitz.services.chat.storage import ChatDatabase


@pytest.fixture
async def one_at_a_time(tmp_path: Path) -> AsyncIterator[World]:
    """Chat generating one reply at a time: a second waits on the queue for the first."""
    async with chat_world(tmp_path, env={"KIBITZ_CHAT_REPLY_CONCURRENCY": "1"}) as running:
        yield running


async def stored_job(world: World, message_id: str) -> dict[str, Any] | None:
    """The reply's job row's payload, while it has one."""
    database: ChatDatabase = world.stack.running.apps["chat"].state.database
    async with database.reading() as session:
        payload = await session.scalar(
            select(ReplyJob.payload).where(ReplyJob.message_id == uuid.UUID(message_id))
        )
    return dict(payload) if payload is not None else None


async def stop(world: World, member: Member, message_id: str) -> None:
    stopped = await world.http.post(
        world.url(f"/chat/messages/{message_id}/stop"), headers=member.headers
    )
    assert stopped.status_code == 200, stopped.text


async def test_a_reply_job_stores_no_access_token(world: World) -> None:
    alice = await world.member()
    sent = (await world.send(alice, "talk [sim:tokens=200] [sim:gap-ms=20]")).json()
    reply_id = sent["agent_message"]["id"]
    payload = await stored_job(world, reply_id)
    assert payload is not None
    stored = json.dumps(payload)
    assert alice.account.access_token not in stored
    assert alice.account.refresh_token not in stored
    assert "access_token" not in stored
    # Whose reply it is stays: agents is asked for that user in that tenant.
    assert payload["user_id"] == alice.account.user["id"]
    assert payload["tenant_id"] == alice.account.tenant_id
    await stop(world, alice, reply_id)


async def test_a_reply_accepted_before_its_senders_logout_is_generated_after_it(
    one_at_a_time: World,
) -> None:
    world = one_at_a_time
    busy, bob = await world.member(), await world.member()
    # The only generator is busy until stopped, so Bob's reply waits on the queue...
    first = (await world.send(busy, "talk [sim:tokens=400] [sim:gap-ms=20]")).json()
    sent = await world.send(bob, "hello [sim:tokens=3]")
    assert sent.status_code == 201, sent.text
    reply_id = sent.json()["agent_message"]["id"]
    # ...while Bob logs out, and his access token stops opening agents.
    logout = await world.http.post(
        world.url("/auth/logout"), json={"refresh_token": bob.account.refresh_token}
    )
    assert logout.status_code == 204
    deadline = time.monotonic() + 10
    while (await world.http.get(world.url("/agents/my"), headers=bob.headers)).status_code != 401:
        assert time.monotonic() < deadline, "agents still takes Bob's revoked token"
        await asyncio.sleep(0.05)
    refused = await world.http.get(world.url("/chat/chats"), headers=bob.headers)
    assert refused.status_code == 401
    assert (await stored_job(world, reply_id)) is not None  # not generated yet
    await stop(world, busy, first["agent_message"]["id"])
    # Polled with chat's own database: Bob cannot read his history any more.
    database: ChatDatabase = world.stack.running.apps["chat"].state.database
    deadline = time.monotonic() + 20
    while True:
        async with database.reading() as session:
            reply = await session.get(Message, uuid.UUID(reply_id))
        assert reply is not None
        if reply.status not in ("pending", "streaming"):
            break
        assert time.monotonic() < deadline, "Bob's reply did not finish"
        await asyncio.sleep(0.05)
    assert reply.status == "complete", reply.content
    assert reply.content


# -- tools offered, their calls reported, the conversation continued (issue 18) ----------------


ASK_TOOL = {
    "name": "ask_researcher",
    "description": "Ask the researcher agent.",
    "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
}
SCRIPTED_CALL = 'Plan it [sim:tool=ask_researcher;args={"task": "find old maps"}]'


async def _agent(world: World, member: Member, provider: str, model: str) -> str:
    response = await world.http.post(
        world.url("/agents/create"),
        headers=member.headers,
        json={"name": "Lead", "llm_provider": provider, "model": model, "instructions": "Lead."},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _order(member: Member, agent_id: str, content: str) -> ReplyOrder:
    return ReplyOrder(
        message_id=new_id(),
        user_message_id=new_id(),
        chat_id=new_id(),
        tenant_id=uuid.UUID(member.account.tenant_id),
        user_id=uuid.UUID(member.account.user["id"]),
        agent_id=uuid.UUID(agent_id),
        context=[{"role": "user", "content": content}],
        request_id=None,
        created_at=utcnow(),
    )


def _agents(world: World) -> ServiceClient:
    """Chat's own client of agents (with chat's service credential)."""
    return world.stack.running.apps["chat"].state.chat_service.agents  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]
)
async def test_a_reply_offered_tools_reports_the_calls_and_continues_with_their_results(
    world: World, provider: str, model: str
) -> None:
    member = await world.member()
    order = _order(member, await _agent(world, member, provider, model), SCRIPTED_CALL)
    agents = _agents(world)
    progress, deltas = ReplyProgress(), list[str]()

    async def on_delta(text: str) -> None:
        deltas.append(text)

    await read_reply(agents, order, progress, on_delta, tools=[ASK_TOOL])
    (call,) = progress.tool_calls
    assert call["name"] == "ask_researcher" and call["arguments"] == {"task": "find old maps"}
    assert call["id"] and progress.finish_reason == "tool_calls" and deltas == []
    first_input = progress.input_tokens
    assert first_input > 0
    wire = world.simulator.requests[-1]["body"]
    assert [tool.get("name") or tool["function"]["name"] for tool in wire["tools"]] == [
        "ask_researcher"
    ]

    messages = [
        *order.context,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "The Tabula Rogeriana."},
    ]
    await read_reply(agents, order, progress, on_delta, messages=messages, tools=[ASK_TOOL])
    assert progress.tool_calls == []
    assert f"[{call['id']}] The Tabula Rogeriana." in "".join(deltas)
    # Usage adds up over the calls of one reply.
    assert progress.input_tokens > first_input


async def test_an_echo_agent_offered_tools_fails_the_reply_naming_why(world: World) -> None:
    member = await world.member()
    order = _order(member, await _agent(world, member, "echo", "echo"), "hello")

    async def on_delta(text: str) -> None:
        raise AssertionError("nothing streams")

    with pytest.raises(ReplyFailedError) as failed:
        await read_reply(_agents(world), order, ReplyProgress(), on_delta, tools=[ASK_TOOL])
    assert "cannot call tools" in failed.value.detail
