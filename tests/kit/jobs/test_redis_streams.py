"""The Redis Streams queue's own housekeeping: consumers of stopped processes leave the group."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis import asyncio as aioredis

from kibitz.kit.jobs import Job, Lease, redis_streams
from kibitz.kit.jobs.redis_streams import GROUP, RedisStreamsJobQueue
from tests.kit.jobs.conftest import REDIS_URL, QueueFactory

pytestmark = pytest.mark.redis


async def _consumer_names(client: aioredis.Redis, stream: str) -> list[str]:
    consumers: Any = await client.xinfo_consumers(stream, GROUP)
    return [info["name"].decode() for info in consumers]


async def test_a_stopped_consumer_leaves_the_group() -> None:
    queues = QueueFactory("redis")
    client = aioredis.from_url(REDIS_URL)
    try:
        queue = await queues.replica()
        assert isinstance(queue, RedisStreamsJobQueue)
        handled: list[str] = []

        async def handler(lease: Lease) -> None:
            handled.append(lease.job.id)

        stream = queue.stream_of("tests.work")
        subscription = await queue.consume("tests.work", handler, concurrency=1)
        await queue.enqueue(Job(id="one", kind="tests.work", payload={}))
        for _ in range(200):
            if handled:
                break
            await asyncio.sleep(0.05)
        assert len(await _consumer_names(client, stream)) == 1
        await subscription.cancel()
        assert await _consumer_names(client, stream) == []
    finally:
        await queues.close()
        await client.aclose()


async def test_a_long_idle_consumer_holding_nothing_is_pruned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queues = QueueFactory("redis")
    client = aioredis.from_url(REDIS_URL)
    try:
        queue = await queues.replica()
        assert isinstance(queue, RedisStreamsJobQueue)
        stream = queue.stream_of("tests.work")
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        # A process that read once and died with nothing held; and one that died holding a job.
        await client.xreadgroup(GROUP, "died-empty", {stream: ">"}, count=1)
        await client.xadd(stream, {"id": "j", "payload": "{}", "attempt": "1"})
        await client.xreadgroup(GROUP, "died-holding", {stream: ">"}, count=1)
        await asyncio.sleep(0.1)
        monkeypatch.setattr(redis_streams, "_DEAD_CONSUMER_IDLE_MS", 50)
        await queue._prune_consumers(stream)
        assert await _consumer_names(client, stream) == ["died-holding"]
    finally:
        await queues.close()
        await client.aclose()
