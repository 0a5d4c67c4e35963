"""Redis Streams backend: a stream per event name, a consumer group per subscribing service.

Each replica reads with XREADGROUP (so an event goes to one replica of the group), acknowledges
with XACK after the handler ran (or the event was parked), and re-claims events another replica
left pending for longer than `claim_idle_seconds` (it crashed or lost its connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from redis.exceptions import ResponseError

from kibitz.kit.events.bus import (
    EVENTS_PUBLISHED,
    DeadLetterSink,
    EventEnvelope,
    EventHandler,
    Retention,
    RetryPolicy,
    deliver_with_retry,
)
from kibitz.kit.redis_client import redis_client
from kibitz.kit.subscription import (
    Subscription,
    TaskSubscription,
    raise_if_cancelling,
    replica_name,
    stop_tasks,
)

logger = structlog.get_logger("kibitz.bus.redis")

DEFAULT_PREFIX = "kibitz.events"
# 1 s: how long one XREADGROUP blocks waiting for new events.
_BLOCK_MS = 1_000
_BATCH = 20
# 5 s: the longest pause between reconnection attempts while Redis is unreachable.
_MAX_BACKOFF_SECONDS = 5.0


class RedisStreamsBus:
    """The event bus on Redis Streams (redis-py asyncio)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        retry: RetryPolicy | None = None,
        claim_idle_seconds: float = 30.0,
        retention: Retention | None = None,
    ) -> None:
        self.url = url
        # Each stream is capped (approximately: whole radix-tree nodes) at this many entries.
        self.retention = retention or Retention()
        self.prefix = prefix or DEFAULT_PREFIX
        self.retry = retry or RetryPolicy()
        self.claim_idle_seconds = claim_idle_seconds
        self._redis = redis_client(url)
        self._tasks: set[asyncio.Task[None]] = set()

    def stream_of(self, name: str) -> str:
        """The stream key that carries events of this name."""
        return f"{self.prefix}.{name}"

    async def publish(self, envelope: EventEnvelope) -> None:
        """XADD the event to its stream (raises while Redis is unreachable)."""
        await self._redis.xadd(
            self.stream_of(envelope.name),
            {"id": str(envelope.id), "envelope": envelope.to_bytes()},
            maxlen=self.retention.max_events,
            approximate=True,
        )
        EVENTS_PUBLISHED.labels("redis", envelope.name).inc()

    async def subscribe(
        self,
        names: list[str],
        *,
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None = None,
    ) -> Subscription:
        """Start a replica of `group` reading the streams of `names`."""
        streams = [self.stream_of(name) for name in dict.fromkeys(names)]
        task = asyncio.create_task(
            self._consume(streams, group, replica_name(group), handler, dead_letter)
        )
        return TaskSubscription(self._tasks, [task])

    async def listen(self, names: list[str], *, handler: EventHandler) -> Subscription:
        """Read the streams of `names` from their current end, without a group (every replica)."""
        streams = [self.stream_of(name) for name in dict.fromkeys(names)]
        task = asyncio.create_task(self._listen(streams, handler))
        return TaskSubscription(self._tasks, [task])

    async def _listen(self, streams: list[str], handler: EventHandler) -> None:
        # "$" until the first read succeeds; then the last id seen, so an outage loses nothing.
        positions: dict[Any, Any] = dict.fromkeys(streams, "$")
        backoff = 0.1
        while True:
            # Some client calls swallow a cancellation that lands mid-read: stop anyway.
            raise_if_cancelling(None)
            try:
                if any(position == "$" for position in positions.values()):
                    for stream in streams:
                        if positions[stream] == "$":
                            last: Any = await self._redis.xinfo_stream(stream)
                            positions[stream] = last.get("last-generated-id", b"0-0")
                replies: Any = await self._redis.xread(positions, count=_BATCH, block=_BLOCK_MS)
                for stream, entries in replies or []:
                    key = stream.decode() if isinstance(stream, bytes) else stream
                    for entry_id, fields in entries:
                        positions[key] = entry_id
                        try:
                            envelope = EventEnvelope.from_bytes(fields[b"envelope"])
                        except Exception:
                            logger.error("redis_event_unreadable", entry_id=str(entry_id))
                            continue
                        await deliver_with_retry(
                            envelope,
                            group="listener",
                            handler=handler,
                            dead_letter=None,
                            policy=self.retry,
                        )
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                raise_if_cancelling(exc)
                if "no such key" in str(exc).lower():
                    # The stream does not exist yet: start from its beginning once it does.
                    positions = {
                        stream: ("0-0" if position == "$" else position)
                        for stream, position in positions.items()
                    }
                    continue
                logger.warning("redis_listen_failed", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            except Exception as exc:
                raise_if_cancelling(exc)
                logger.warning("redis_listen_failed", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _ensure_groups(self, streams: list[str], group: str) -> None:
        for stream in streams:
            try:
                # "0": a group created after events were written still receives them.
                await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                raise_if_cancelling(exc)
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _consume(
        self,
        streams: list[str],
        group: str,
        consumer: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None,
    ) -> None:
        backoff = 0.1
        groups_ready = False
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while True:
            # Some client calls swallow a cancellation that lands mid-read: stop anyway.
            raise_if_cancelling(None)
            try:
                if not groups_ready:
                    await self._ensure_groups(streams, group)
                    groups_ready = True
                if loop.time() >= next_claim:
                    await self._claim_stale(streams, group, consumer, handler, dead_letter)
                    next_claim = loop.time() + max(self.claim_idle_seconds / 2, 0.1)
                replies: Any = await self._redis.xreadgroup(
                    group, consumer, dict.fromkeys(streams, ">"), count=_BATCH, block=_BLOCK_MS
                )
                for stream, entries in replies or []:
                    for entry_id, fields in entries:
                        await self._handle(stream, entry_id, fields, group, handler, dead_letter)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                raise_if_cancelling(exc)
                # The stream or group vanished (e.g. deleted): create them again.
                if "NOGROUP" in str(exc):
                    groups_ready = False
                    continue
                logger.warning("redis_consume_failed", group=group, error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            except Exception as exc:
                raise_if_cancelling(exc)
                logger.warning("redis_consume_failed", group=group, error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _claim_stale(
        self,
        streams: list[str],
        group: str,
        consumer: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None,
    ) -> None:
        idle_ms = int(self.claim_idle_seconds * 1000)
        for stream in streams:
            start = "0-0"
            while True:
                reply = await self._redis.xautoclaim(
                    stream, group, consumer, min_idle_time=idle_ms, start_id=start, count=_BATCH
                )
                start, entries = reply[0], reply[1]
                for entry_id, fields in entries:
                    if fields is None:
                        # Trimmed from the stream while pending: nothing left to deliver.
                        await self._redis.xack(stream, group, entry_id)
                        continue
                    await self._handle(stream, entry_id, fields, group, handler, dead_letter)
                if start in (b"0-0", "0-0") or not entries:
                    break

    async def _handle(
        self,
        stream: Any,
        entry_id: Any,
        fields: dict[bytes, bytes],
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None,
    ) -> None:
        try:
            envelope = EventEnvelope.from_bytes(fields[b"envelope"])
        except Exception:
            logger.error("redis_event_unreadable", group=group, entry_id=str(entry_id))
            await self._redis.xack(stream, group, entry_id)
            return
        await deliver_with_retry(
            envelope, group=group, handler=handler, dead_letter=dead_letter, policy=self.retry
        )
        await self._redis.xack(stream, group, entry_id)

    async def start(self) -> None:
        """Nothing to do up front: connections open lazily and recover on their own."""

    async def close(self) -> None:
        """Stop every replica and close the connection pool."""
        await stop_tasks(self._tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.aclose(), 5.0)
