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

from kibitz.services.chat.models import Message, ReplyJob
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
