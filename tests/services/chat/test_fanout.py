"""Fan-out backends: every subscriber of a chat gets its events; snapshots; stop signals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from kibitz.services.chat.streams.fanout import (
    _MAX_QUEUED_EVENTS,
    Fanout,
    InProcessFanout,
    RedisFanout,
    Subscription,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def fanouts(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Fanout, Fanout, list[str]]]:
    """Two replicas' fan-outs (the same one in memory) and the stop requests each received."""
    stops: list[str] = []

    async def on_stop(message_id: str) -> None:
        stops.append(message_id)

    if request.param == "memory":
        one = InProcessFanout()
        await one.start(on_stop)
        yield one, one, stops
        await one.close()
        return
    first, second = RedisFanout(REDIS_URL), RedisFanout(REDIS_URL)
    await first.start(on_stop)
    await second.start(on_stop)
    yield first, second, stops
    await first.close()
    await second.close()


async def test_every_subscriber_of_a_chat_gets_its_events(
    fanouts: tuple[Fanout, Fanout, list[str]],
) -> None:
    publisher, listener, _ = fanouts
    chat, other = str(uuid.uuid4()), str(uuid.uuid4())
    with (
        listener.subscribe(chat) as one,
        listener.subscribe(chat) as two,
        listener.subscribe(other) as elsewhere,
    ):
        await publisher.publish(chat, {"type": "message.created", "message": {"id": "m"}})
        await publisher.publish_delta(chat, "m", 0, "Hello")
        for subscription in (one, two):
            assert (await subscription.next(2))["type"] == "message.created"
            delta = await subscription.next(2)
            assert (delta["offset"], delta["content"]) == (0, "Hello")
        with pytest.raises(TimeoutError):
            await elsewhere.next(0.2)


async def test_snapshots_hold_what_streamed_until_forgotten(
    fanouts: tuple[Fanout, Fanout, list[str]],
) -> None:
    publisher, listener, _ = fanouts
    chat, message = str(uuid.uuid4()), str(uuid.uuid4())
    assert await listener.snapshot(message) is None
    with listener.subscribe(chat) as subscription:
        await publisher.publish_delta(chat, message, 0, "Grüße ")
        await publisher.publish_delta(chat, message, 6, "🙂")
        seen = ""
        while len(seen) < len("Grüße 🙂"):
            seen += (await subscription.next(2))["content"]
    # What a subscriber saw is in the snapshot.
    assert await listener.snapshot(message) == "Grüße 🙂"
    await publisher.forget(chat, message)
    assert await listener.snapshot(message) is None


async def test_deltas_that_come_while_one_is_out_go_joined_in_order(
    fanouts: tuple[Fanout, Fanout, list[str]],
) -> None:
    publisher, listener, _ = fanouts
    chat, first, second = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with listener.subscribe(chat) as subscription:
        # No await in between gives Redis no chance to take them one by one.
        for offset, text in ((0, "one "), (4, "two "), (8, "three")):
            await publisher.publish_delta(chat, first, offset, text)
        await publisher.publish(chat, {"type": "message.completed", "message": {"id": first}})
        await publisher.publish_delta(chat, second, 0, "next")
        joins = isinstance(publisher, RedisFanout)  # in process, nothing waits: nothing to join
        events = [await subscription.next(2) for _ in range(3 if joins else 5)]
        with pytest.raises(TimeoutError):
            await subscription.next(0.2)
    assert [event["type"] for event in events][-2:] == ["message.completed", "message.delta"]
    text = "".join(event.get("content", "") for event in events if event.get("message_id") == first)
    assert text == "one two three"
    if joins:
        assert (events[0]["offset"], events[0]["content"]) == (0, "one two three")
    assert await listener.snapshot(first) == "one two three"


async def test_a_stop_request_reaches_the_generating_replica(
    fanouts: tuple[Fanout, Fanout, list[str]],
) -> None:
    publisher, _, stops = fanouts
    message = str(uuid.uuid4())
    await publisher.request_stop(message)
    for _ in range(100):
        if message in stops:
            break
        await asyncio.sleep(0.01)
    assert message in stops


async def test_a_subscriber_behind_takes_every_queued_event_at_once_until_cut_off() -> None:
    subscription = Subscription("chat")
    for offset in range(3):
        subscription.deliver({"type": "message.delta", "offset": offset})
    assert [event["offset"] for event in subscription.ready()] == [0, 1, 2]
    assert list(subscription.ready()) == []  # nothing waits: no blocking either
    for offset in range(_MAX_QUEUED_EVENTS + 1):  # one more than fits: cut off
        subscription.deliver({"type": "message.delta", "offset": offset})
    assert list(subscription.ready()) == []
    with pytest.raises(EOFError):
        await subscription.next(1)
