"""Chat end to end through the gateway, with the LLM simulator behind the agents service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.services.chat.world import (
    SseEvent,
    World,
    chat_world,
    new_key,
    read_sse,
    reply_finished,
    streamed_text,
)

SLOW = "[sim:tokens=30] [sim:gap-ms=25]"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The whole stack behind the gateway, on SQLite."""
    async with chat_world(tmp_path, gateway=True, modules=None) as running:
        yield running


async def deltas(response: object, count: int) -> list[SseEvent]:
    seen = 0

    def enough(event: SseEvent) -> bool:
        nonlocal seen
        seen += event.event == "message.delta"
        return seen >= count

    return await read_sse(response, until=enough)  # type: ignore[arg-type]


async def test_a_streamed_send_delivers_deltas_in_order_before_the_reply_completes(
    world: World,
) -> None:
    alice = await world.member()
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": f"tell me {SLOW}", "agent_id": alice.agent_id},
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 201
        events = await read_sse(response)
    reply_id = events[1].data["id"]
    assert events[-1].event == "message.completed"
    delta_events = [e for e in events if e.event == "message.delta"]
    assert len(delta_events) == 30
    assert [e.data["offset"] for e in delta_events] == sorted(
        e.data["offset"] for e in delta_events
    )
    assert streamed_text(events, reply_id) == events[-1].data["content"]
    # Not buffered by any layer: the first delta came long before the last.
    assert delta_events[-1].at - delta_events[0].at > 0.4


async def test_two_subscribers_through_the_gateway_see_the_same_events(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as one, world.stream(alice, chat_id) as two:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        until = reply_finished(body["agent_message"]["id"])
        first, second = await asyncio.gather(read_sse(one, until=until), read_sse(two, until=until))
    assert [(e.event, e.id, e.data) for e in first] == [(e.event, e.id, e.data) for e in second]
    assert first[-1].event == "message.completed"


async def test_reconnecting_with_last_event_id_through_the_gateway_resumes_exactly(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        before = await deltas(stream, 4)
    await asyncio.sleep(0.15)
    async with world.stream(alice, chat_id, last_event_id=before[-1].id) as stream:
        after = await read_sse(stream, until=reply_finished(reply_id))
    assert (
        streamed_text(before, reply_id) + streamed_text(after, reply_id)
        == after[-1].data["content"]
    )
    ids = [e.id for e in before + after]
    assert len(ids) == len(set(ids))


async def test_the_sender_disconnecting_does_not_stop_generation(world: World) -> None:
    alice = await world.member()
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": f"go {SLOW}", "agent_id": alice.agent_id},
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        events = await deltas(response, 1)
    reply = await world.wait_finished(alice, events[0].data["chat_id"], events[1].data["id"])
    assert reply["status"] == "complete"
    assert reply["output_tokens"] == 30


async def test_stop_through_the_gateway_keeps_what_streamed(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        body = (
            await world.send(alice, "go [sim:tokens=300] [sim:gap-ms=20]", chat_id=chat_id)
        ).json()
        reply_id = body["agent_message"]["id"]
        seen = await deltas(stream, 3)
        stopped = await world.http.post(
            world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
        )
        rest = await read_sse(stream, until=reply_finished(reply_id))
    assert stopped.json()["status"] == "stopped"
    assert streamed_text(seen + rest, reply_id) == stopped.json()["content"]
    assert rest[-1].data["status"] == "stopped"


async def test_an_upstream_failure_after_k_tokens_keeps_them_in_a_failed_message(
    world: World,
) -> None:
    alice = await world.member()
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={
            "content": "go [sim:tokens=20] [sim:fault=disconnect-after:4]",
            "agent_id": alice.agent_id,
        },
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        events = await read_sse(response)
    assert events[-1].event == "message.failed"
    reply_id = events[-1].data["id"]
    assert len(events[-1].data["content"].split()) == 4
    assert streamed_text(events, reply_id) == events[-1].data["content"]
    stored = await world.wait_finished(alice, events[-1].data["chat_id"], reply_id)
    assert (stored["status"], stored["content"]) == ("failed", events[-1].data["content"])


async def test_twenty_concurrent_sends_with_one_key_through_the_gateway_store_once(
    world: World,
) -> None:
    alice = await world.member()
    key = {"Idempotency-Key": new_key()}
    answers = await asyncio.gather(
        *(world.send(alice, "just once", headers=key) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    chats = await world.http.get(world.url("/chat/chats"), headers=alice.headers)
    assert len(chats.json()["items"]) == 1


async def test_the_websocket_through_the_gateway_carries_the_events(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    url = world.url(f"/chat/ws/{chat_id}").replace("http://", "ws://")
    # The gateway checks the token at the handshake; a non-browser client sends it as a header.
    async with connect(url, additional_headers=alice.headers) as socket:
        body = (await world.send(alice, "go [sim:tokens=6]", chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        events: list[dict[str, Any]] = []
        while not events or events[-1]["event"] != "message.completed":
            events.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
    assert events[-1]["data"]["id"] == reply_id
    text = "".join(e["data"]["content"] for e in events if e["event"] == "message.delta")
    assert text == events[-1]["data"]["content"]


async def test_another_tenant_gets_404_on_the_stream_through_the_gateway(world: World) -> None:
    alice, mallory = await world.member(), await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(mallory, chat_id) as stream:
        assert stream.status_code == 404
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=mallory.headers)
    assert history.status_code == 404
