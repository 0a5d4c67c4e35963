"""Live stream fan-out: in-process by default, Redis pub/sub across replicas.

Besides delivering events to every subscriber of a chat, the fan-out keeps the content streamed so
far of each reply in flight (a "snapshot"). A new subscriber registers first and reads snapshots
second, so every delta is either in what it read or in what it receives: no gap. Deltas carry
their character offset, so whatever it receives twice is dropped: no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import structlog

from kibitz.kit.batching import OrderedCoalescer
from kibitz.kit.redis_client import redis_client

logger = structlog.get_logger("kibitz.chat.fanout")

StreamEvent = dict[str, Any]
StopHandler = Callable[[str], Awaitable[None]]
# A subscriber this far behind is cut off; it reconnects with Last-Event-ID and loses nothing.
_MAX_QUEUED_EVENTS = 10_000
# 1 h: snapshots outlive any reply; a crashed generator's snapshot does not linger forever.
_SNAPSHOT_TTL_SECONDS = 3600


class Subscription:
    """One subscriber's queue of a chat's events."""

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue(maxsize=_MAX_QUEUED_EVENTS)
        self.overflowed = False

    def deliver(self, event: StreamEvent) -> None:
        """Queue an event (or cut the subscriber off when it is too far behind)."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(maxsize=1)
            self.queue.put_nowait(None)

    def ready(self) -> Iterator[StreamEvent]:
        """The events already queued, taken one by one while asked for (no waiting; a
        subscriber that was cut off gets none, and `next` then tells it)."""
        while not self.overflowed and not self.queue.empty():
            event = self.queue.get_nowait()
            assert event is not None  # only an overflow queues the end marker
            yield event

    async def next(self, wait_seconds: float) -> StreamEvent:
        """The next event; raises TimeoutError when none came in time, EOFError when cut off."""
        if not self.queue.empty():
            event = self.queue.get_nowait()  # the common case mid-reply: no timer needed
        else:
            event = await asyncio.wait_for(self.queue.get(), wait_seconds)
        if event is None:
            raise EOFError("subscriber fell too far behind")
        return event


class Fanout(Protocol):
    """Delivers a chat's live events to its subscribers, wherever they are connected."""

    async def start(self, on_stop: StopHandler) -> None:
        """Connect; `on_stop` is called with a message id whenever someone asks to stop it."""

    async def close(self) -> None:
        """Disconnect."""

    def subscribe(self, chat_id: str) -> contextlib.AbstractContextManager[Subscription]:
        """Receive the chat's events while the block runs."""

    async def publish(self, chat_id: str, event: StreamEvent) -> None:
        """Send an event to every subscriber of the chat."""

    async def publish_delta(self, chat_id: str, message_id: str, offset: int, text: str) -> None:
        """Extend the reply's snapshot and send the delta, as one step, after the chat's earlier
        events (it may still be on its way when this returns; the chat's next `publish` or
        `forget` follows it)."""

    async def snapshot(self, message_id: str) -> str | None:
        """What has streamed so far of a reply in flight (None when unknown)."""

    async def forget(self, chat_id: str, message_id: str) -> None:
        """Drop the snapshot of a finished reply."""

    async def request_stop(self, message_id: str) -> None:
        """Ask whichever replica generates the reply to stop it."""


def delta_event(chat_id: str, message_id: str, offset: int, text: str) -> StreamEvent:
    """The internal form of a delta."""
    return {
        "type": "message.delta",
        "chat_id": chat_id,
        "message_id": message_id,
        "offset": offset,
        "content": text,
    }


class _LocalSubscribers:
    def __init__(self) -> None:
        self.by_chat: dict[str, set[Subscription]] = defaultdict(set)

    @contextlib.contextmanager
    def subscribe(self, chat_id: str) -> Iterator[Subscription]:
        subscription = Subscription(chat_id)
        self.by_chat[chat_id].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self.by_chat.get(chat_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self.by_chat[chat_id]

    def deliver(self, chat_id: str, event: StreamEvent) -> None:
        for subscription in list(self.by_chat.get(chat_id, ())):
            subscription.deliver(event)

    def following(self, chat_id: str) -> bool:
        """Whether anyone here follows the chat."""
        return chat_id in self.by_chat


class InProcessFanout:
    """All-in-one: subscribers and snapshots live in this process."""

    def __init__(self) -> None:
        self._local = _LocalSubscribers()
        self._snapshots: dict[str, list[str]] = {}
        self._on_stop: StopHandler | None = None

    async def start(self, on_stop: StopHandler) -> None:
        """Remember who handles stop requests."""
        self._on_stop = on_stop

    async def close(self) -> None:
        """Nothing to disconnect."""

    def subscribe(self, chat_id: str) -> contextlib.AbstractContextManager[Subscription]:
        """Receive the chat's events while the block runs."""
        return self._local.subscribe(chat_id)

    async def publish(self, chat_id: str, event: StreamEvent) -> None:
        """Deliver to every local subscriber."""
        self._local.deliver(chat_id, event)

    async def publish_delta(self, chat_id: str, message_id: str, offset: int, text: str) -> None:
        """Extend the snapshot and deliver the delta."""
        self._snapshots.setdefault(message_id, []).append(text)
        self._local.deliver(chat_id, delta_event(chat_id, message_id, offset, text))

    async def snapshot(self, message_id: str) -> str | None:
        """The reply's content so far."""
        parts = self._snapshots.get(message_id)
        return "".join(parts) if parts is not None else None

    async def forget(self, chat_id: str, message_id: str) -> None:
        """Drop the snapshot."""
        self._snapshots.pop(message_id, None)

    async def request_stop(self, message_id: str) -> None:
        """The generator runs here, if anywhere."""
        if self._on_stop is not None:
            await self._on_stop(message_id)


# A delta in one command instead of MULTI, APPEND, EXPIRE, PUBLISH, EXEC: every delta of every
# reply goes through here. The channel is an argument, not a key (channels are not keys).
_APPEND_AND_PUBLISH = """
redis.call('APPEND', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[4])
"""


class RedisFanout:
    """Distributed: events travel over Redis pub/sub; snapshots are Redis strings.

    Every replica holds one pattern subscription to all chat channels and dispatches to its own
    subscribers, so subscribing a client costs no round trip to Redis. A reply's deltas do not
    wait for Redis: a chat's first goes at once, the next ones at most one script call per
    `linger_seconds`, joined (Redis, every replica's reader and each stream pay per message,
    not per character); the chat's other events go at once, after its deltas.
    """

    _PREFIX = "kibitz:chat:"
    _EVENTS = _PREFIX + "events:"
    _STOP = _PREFIX + "stop"
    _SNAPSHOT = "kibitz:chat-snapshot:"

    def __init__(self, url: str, *, linger_seconds: float = 0.0) -> None:
        # kit's one Redis client (lazy, retried after a cut connection); raw bytes: snapshots
        # are decoded whole, never a UTF-8 sequence split in two.
        self._redis = redis_client(url)
        self._append_and_publish = self._redis.register_script(_APPEND_AND_PUBLISH)
        self._deltas: OrderedCoalescer[str, StreamEvent] = OrderedCoalescer(
            self._send_deltas, linger_seconds=linger_seconds
        )
        self._pubsub = self._redis.pubsub()
        self._local = _LocalSubscribers()
        self._reader: asyncio.Task[None] | None = None
        self._on_stop: StopHandler | None = None

    async def start(self, on_stop: StopHandler) -> None:
        """Subscribe to every chat channel and start dispatching."""
        self._on_stop = on_stop
        await self._pubsub.psubscribe(self._PREFIX + "*")
        # Wait for the confirmation: from here on no event published is missed.
        while True:
            message = await self._pubsub.get_message(timeout=5.0)
            if message is not None and message.get("type") == "psubscribe":
                break
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        """Send the deltas on their way, stop dispatching and disconnect."""
        await self._deltas.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=5.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("chat_fanout_read_failed")
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "pmessage":
                continue
            channel = _text(message["channel"])
            data = _text(message["data"])
            if channel == self._STOP:
                if self._on_stop is not None:
                    await self._on_stop(data)
            elif channel.startswith(self._EVENTS):
                chat_id = channel[len(self._EVENTS) :]
                # Every replica hears every chat's events: only those followed here are decoded.
                if self._local.following(chat_id):
                    self._local.deliver(chat_id, json.loads(data))

    def subscribe(self, chat_id: str) -> contextlib.AbstractContextManager[Subscription]:
        """Receive the chat's events while the block runs."""
        return self._local.subscribe(chat_id)

    async def publish(self, chat_id: str, event: StreamEvent) -> None:
        """Publish to every replica, after the chat's deltas."""
        await self._deltas.drain(chat_id)
        await self._redis.publish(self._EVENTS + chat_id, json.dumps(event))

    async def publish_delta(self, chat_id: str, message_id: str, offset: int, text: str) -> None:
        """Queue the delta behind the chat's others (raises when an earlier one failed)."""
        self._deltas.add(chat_id, delta_event(chat_id, message_id, offset, text))

    async def _send_deltas(self, chat_id: str, deltas: list[StreamEvent]) -> None:
        """Each run of one reply's deltas as one: APPEND and PUBLISH in one script (atomic, like
        MULTI), so a snapshot read orders before or after both."""
        for delta in joined_deltas(deltas):
            await self._append_and_publish(
                keys=[self._SNAPSHOT + delta["message_id"]],
                args=[
                    delta["content"].encode(),
                    _SNAPSHOT_TTL_SECONDS,
                    self._EVENTS + chat_id,
                    json.dumps(delta),
                ],
            )

    async def snapshot(self, message_id: str) -> str | None:
        """The reply's content so far, as stored in Redis."""
        value = await self._redis.get(self._SNAPSHOT + message_id)
        return _text(value) if value is not None else None

    async def forget(self, chat_id: str, message_id: str) -> None:
        """Drop the snapshot, once the reply's last deltas are in it."""
        with contextlib.suppress(Exception):  # a failed delta was reported to its reply
            await self._deltas.drain(chat_id)
        await self._redis.delete(self._SNAPSHOT + message_id)

    async def request_stop(self, message_id: str) -> None:
        """Tell every replica; the one generating the reply stops it."""
        await self._redis.publish(self._STOP, message_id)


def joined_deltas(deltas: list[StreamEvent]) -> list[StreamEvent]:
    """Consecutive deltas of one reply, each run joined into one delta (same offset as its
    first)."""
    joined: list[StreamEvent] = []
    for delta in deltas:
        last = joined[-1] if joined else None
        if (
            last is not None
            and last["message_id"] == delta["message_id"]
            and last["offset"] + len(last["content"]) == delta["offset"]
        ):
            joined[-1] = {**last, "content": last["content"] + delta["content"]}
        else:
            joined.append(delta)
    return joined


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def create_fanout(redis_url: str | None, *, linger_seconds: float = 0.0) -> Fanout:
    """Redis pub/sub when a Redis URL is configured (a chat's deltas joined per
    `linger_seconds`), in-process otherwise."""
    if redis_url:
        return RedisFanout(redis_url, linger_seconds=linger_seconds)
    return InProcessFanout()
