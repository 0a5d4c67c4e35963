"""Job queues of each backend, each test in a namespace (and broker prefix) of its own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import nats
import pytest
from nats.js.errors import NotFoundError
from redis import asyncio as aioredis

from kibitz.kit.jobs import InProcessJobQueue, JobQueue
from kibitz.kit.jobs.nats_jetstream import NatsJetStreamJobQueue
from kibitz.kit.jobs.redis_streams import RedisStreamsJobQueue

REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("nats", marks=pytest.mark.nats),
]


@dataclass
class QueueFactory:
    """Builds queues of one backend as separate processes would hold them (memory: one, shared)."""

    backend: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    namespace: str = field(default_factory=lambda: f"n{uuid.uuid4().hex[:8]}")
    made: list[JobQueue] = field(default_factory=list)

    @property
    def brokered(self) -> bool:
        """Whether leases can lapse (a broker backend)."""
        return self.backend != "memory"

    def url(self) -> str:
        """The queue URL a process of this test would be configured with."""
        if self.backend == "redis":
            return f"{REDIS_URL}?prefix={self.prefix}"
        if self.backend == "nats":
            return f"{NATS_URL}?prefix={self.prefix}"
        return "memory"

    async def replica(
        self, *, lease_seconds: float = 1.0, max_attempts: int = 5, port: int | None = None
    ) -> JobQueue:
        """A queue as one process would hold it (through `port`, e.g. a proxy, if given)."""
        if self.backend == "memory":
            if not self.made:
                self.made.append(
                    InProcessJobQueue(lease_seconds=lease_seconds, max_attempts=max_attempts)
                )
            return self.made[0]
        queue: JobQueue
        if self.backend == "redis":
            queue = RedisStreamsJobQueue(
                REDIS_URL.replace(":6379", f":{port}") if port else REDIS_URL,
                namespace=self.namespace,
                prefix=self.prefix,
                lease_seconds=lease_seconds,
                max_attempts=max_attempts,
            )
        else:
            queue = NatsJetStreamJobQueue(
                NATS_URL.replace(":4222", f":{port}") if port else NATS_URL,
                namespace=self.namespace,
                prefix=self.prefix,
                lease_seconds=lease_seconds,
                max_attempts=max_attempts,
            )
        await queue.start()
        self.made.append(queue)
        return queue

    async def close(self) -> None:
        """Close every queue made and remove what the test left on the broker."""
        for queue in self.made:
            await queue.close()
        if self.backend == "redis":
            client = aioredis.from_url(REDIS_URL)
            keys = [key async for key in client.scan_iter(match=f"{self.prefix}.*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        elif self.backend == "nats":
            connection = await nats.connect(NATS_URL)
            with contextlib.suppress(NotFoundError):
                stream = NatsJetStreamJobQueue(
                    NATS_URL, namespace=self.namespace, prefix=self.prefix
                )
                await connection.jetstream().delete_stream(stream.stream)
            await connection.close()


@pytest.fixture(params=BACKENDS)
async def queues(request: pytest.FixtureRequest) -> AsyncIterator[QueueFactory]:
    factory = QueueFactory(str(request.param))
    try:
        yield factory
    finally:
        await factory.close()
