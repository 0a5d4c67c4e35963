"""Turns of several agents end to end: a panel through the gateway, and a chat replica killed
mid-panel or mid-orchestrated-turn (the turn still ends, every reply with its terminal event,
nobody locked out).

Real processes: the stack's services and the LLM simulator; the chaos test runs a second
`kibitz serve chat` on PostgreSQL and Redis and SIGKILLs it. Figures are printed (`-s`)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_chat_recovery import REDIS_URL, TERMINAL, second_chat_process
from tests.services.chat.world import Member, World, chat_world, read_sse, streamed_text

pytestmark = [pytest.mark.slow]


async def panel_chat(
    world: World, names: tuple[str, ...] = ("Critic", "Poet"), mode: str = "panel"
) -> tuple[Member, str]:
    """A Gold member and a panel chat (or one in `mode`) of their three agents."""
    member = await world.member()
    others = [await world.add_agent(member, name) for name in names]
    await world.subscribe(member, "gold")
    created = await world.http.post(
        world.url("/chat/chats"),
        headers=member.headers,
        json={"agent_ids": [member.agent_id, *others], "mode": mode},
    )
    assert created.status_code == 201, created.text
    return member, str(created.json()["id"])


def turn_ended(replies: list[dict[str, Any]], seen: Sequence[Any] = ()) -> Any:
    """An `until` for read_sse: every reply of the turn has had its terminal event (counting
    the events already `seen`)."""
    ended = {e.data.get("id") for e in seen if e.event in TERMINAL}
    waiting = {reply["id"] for reply in replies} - ended

    def check(event: Any) -> bool:
        if event.event in TERMINAL:
            waiting.discard(event.data.get("id"))
        return not waiting

    return check


async def test_a_panel_through_the_gateway_streams_each_agent_in_turn(tmp_path: Path) -> None:
    async with chat_world(tmp_path, gateway=True) as world:
        member, chat_id = await panel_chat(world)
        headers = {**member.headers, "Accept": "text/event-stream"}
        body = {"content": "your views? [sim:tokens=5]", "chat_id": chat_id}
        async with world.http.stream(
            "POST", f"{world.base}/chat/send", json=body, headers=headers
        ) as response:
            assert response.status_code == 201
            events = await read_sse(response)  # the server ends the body after the last reply
        created = [e.data for e in events if e.event == "message.created"]
        replies = [m for m in created if m["sender"] == "agent"]
        assert len(replies) == 3
        ends = [e.data for e in events if e.event in TERMINAL]
        assert [m["id"] for m in ends] == [m["id"] for m in replies]
        assert [m["status"] for m in ends] == ["complete"] * 3
        for reply, end in zip(replies, ends, strict=True):
            assert streamed_text(events, reply["id"]) == end["content"]
            deltas = [
                e
                for e in events
                if e.event == "message.delta" and e.data["message_id"] == reply["id"]
            ]
            assert deltas and all(e.data["agent_id"] == reply["agent_id"] for e in deltas)
        history = await world.http.get(
            f"{world.base}/chat/history/{chat_id}", headers=member.headers
        )
        stored = [m for m in history.json()["messages"] if m["sender"] == "agent"]
        assert [(m["id"], m["status"]) for m in stored] == [(m["id"], "complete") for m in ends]


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.alone
async def test_kill_9_of_a_chat_replica_mid_panel_still_ends_the_turn(tmp_path: Path) -> None:
    prefix = f"turns{os.getpid()}{int(time.time())}"
    env = {"KIBITZ_REDIS_URL": REDIS_URL, "KIBITZ_QUEUE_URL": f"{REDIS_URL}?prefix={prefix}"}
    async with (
        chat_world(tmp_path, database="postgres", env=env) as world,
        second_chat_process(world, tmp_path) as (b, process),
    ):
        panels = [await panel_chat(world) for _ in range(4)]
        turns: list[list[dict[str, Any]]] = []
        async with AsyncExitStack() as streams:
            opened = [
                await streams.enter_async_context(world.stream(member, chat_id))  # replica A
                for member, chat_id in panels
            ]
            for member, chat_id in panels:
                sent = await world.http.post(
                    f"{b}/chat/send",
                    json={"content": "long [sim:tokens=60] [sim:gap-ms=30]", "chat_id": chat_id},
                    headers=member.headers,
                )
                assert sent.status_code == 201, sent.text
                turns.append(sent.json()["agent_messages"])
            # Kill replica B once every turn's second agent streams.
            seen = []
            for stream, replies in zip(opened, turns, strict=True):
                second = replies[1]["id"]
                seen.append(
                    await asyncio.wait_for(
                        read_sse(
                            stream,
                            until=lambda e, second=second: (
                                e.event == "message.delta" and e.data["message_id"] == second
                            ),
                        ),
                        30,
                    )
                )
            process.kill()
            killed_at = time.monotonic()
            took = []
            for stream, replies, events in zip(opened, turns, seen, strict=True):
                events += await asyncio.wait_for(
                    read_sse(stream, until=turn_ended(replies, events)), 40
                )
                took.append(time.monotonic() - killed_at)
        interrupted = 0
        for (member, chat_id), replies in zip(panels, turns, strict=True):
            stored = [await world.wait_finished(member, chat_id, m["id"]) for m in replies]
            statuses = [m["status"] for m in stored]
            assert statuses[0] == "complete"
            assert statuses[1] in ("complete", "failed")
            # The turn went on after the interrupted reply.
            assert statuses[2] == "complete", statuses
            interrupted += statuses[1] == "failed"
            again = await world.send(member, "again [sim:tokens=2]", chat_id=chat_id)
            assert again.status_code == 201, again.text  # nobody locked out
        print(
            f"\n{interrupted} of {len(turns)} panels had their second agent on the killed replica;"
            f" every turn ended within {max(took):.1f} s of the kill"
        )


def ask(tool: str, task: str) -> str:
    """A simulator marker: the orchestrator's model calls `tool` with this task (`[` escaped in
    the JSON, so the delegate's own markers are not the orchestrator's)."""
    arguments = json.dumps({"task": task}).replace("[", "\\u005b")
    return f"[sim:tool={tool};args={arguments}]"


def orchestration_ended(orchestrator: str, seen: Sequence[Any] = ()) -> Any:
    """An `until` for read_sse: the orchestrator's reply and every delegated answer under it
    (those of a retried orchestrator too) have had their terminal events."""
    delegated: set[str] = set()
    ended: set[str] = set()

    def check(event: Any) -> bool:
        data = event.data
        if event.event == "message.created" and data.get("parent_id") == orchestrator:
            delegated.add(data["id"])
        if event.event in TERMINAL:
            ended.add(data.get("id"))
        return orchestrator in ended and delegated <= ended

    for event in seen:
        check(event)
    return check


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.alone
async def test_kill_9_of_a_chat_replica_mid_orchestrated_turn_still_ends_the_turn(
    tmp_path: Path,
) -> None:
    prefix = f"orchestrated{os.getpid()}{int(time.time())}"
    env = {"KIBITZ_REDIS_URL": REDIS_URL, "KIBITZ_QUEUE_URL": f"{REDIS_URL}?prefix={prefix}"}
    async with (
        chat_world(tmp_path, database="postgres", env=env) as world,
        second_chat_process(world, tmp_path) as (b, process),
    ):
        chats = [await panel_chat(world, mode="orchestrated") for _ in range(4)]
        # Each delegate takes about 2 s (60 words 30 ms apart).
        slow = "[sim:tokens=60] [sim:gap-ms=30]"
        content = f"{ask('ask_critic', f'review {slow}')} {ask('ask_poet', f'rhyme {slow}')}"
        orchestrators: list[str] = []
        async with AsyncExitStack() as streams:
            opened = [
                await streams.enter_async_context(world.stream(member, chat_id))  # replica A
                for member, chat_id in chats
            ]
            for member, chat_id in chats:
                sent = await world.http.post(
                    f"{b}/chat/send",
                    json={"content": content, "chat_id": chat_id},
                    headers=member.headers,
                )
                assert sent.status_code == 201, sent.text
                orchestrators.append(sent.json()["agent_message"]["id"])
            # Kill replica B once every turn's first delegate streams (the orchestrator waits
            # for it there, its own reply still empty).
            seen = []
            for stream, orchestrator in zip(opened, orchestrators, strict=True):
                seen.append(
                    await asyncio.wait_for(
                        read_sse(
                            stream,
                            until=lambda e, o=orchestrator: (
                                e.event == "message.delta" and e.data["message_id"] != o
                            ),
                        ),
                        30,
                    )
                )
            process.kill()
            killed_at = time.monotonic()
            took = []
            for stream, orchestrator, events in zip(opened, orchestrators, seen, strict=True):
                events += await asyncio.wait_for(
                    read_sse(stream, until=orchestration_ended(orchestrator, events)), 40
                )
                took.append(time.monotonic() - killed_at)
        statuses: Counter[str] = Counter()
        delegations = []
        for (member, chat_id), orchestrator in zip(chats, orchestrators, strict=True):
            reply = await world.wait_finished(member, chat_id, orchestrator)
            statuses[reply["status"]] += 1
            history = await world.http.get(
                f"{world.base}/chat/history/{chat_id}", headers=member.headers
            )
            messages = history.json()["messages"]
            # Nothing stuck: every reply of the turn ended.
            assert all(m["status"] not in ("pending", "streaming") for m in messages), messages
            asked = [m for m in messages if m["delegated"]]
            assert all(m["parent_id"] == orchestrator for m in asked)
            # A retried orchestrator asks again, within the turn's bound (4) in all.
            assert 2 <= len(asked) <= 4, asked
            delegations.append(len(asked))
            again = await world.send(member, "again [sim:tokens=2]", chat_id=chat_id)
            assert again.status_code == 201, again.text  # nobody locked out
            await world.wait_finished(member, chat_id, again.json()["agent_message"]["id"])
        print(
            f"\norchestrators after the kill: {dict(statuses)}; delegations per turn "
            f"{delegations}; every turn ended within {max(took):.1f} s of the kill"
        )
