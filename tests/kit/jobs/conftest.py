"""Job queues of each backend, each test in a namespace (and broker prefix) of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from kibitz.kit.jobs import InProcessJobQueue, JobQueue

BACKENDS = ["memory"]


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
        return "memory"

    async def replica(self, *, lease_seconds: float = 1.0, max_attempts: int = 5) -> JobQueue:
        """A queue as one process would hold it."""
        if self.backend == "memory":
            if not self.made:
                self.made.append(
                    InProcessJobQueue(lease_seconds=lease_seconds, max_attempts=max_attempts)
                )
            return self.made[0]
        raise AssertionError(f"unknown backend {self.backend}")

    async def close(self) -> None:
        """Close every queue made."""
        for queue in self.made:
            await queue.close()


@pytest.fixture(params=BACKENDS)
async def queues(request: pytest.FixtureRequest) -> AsyncIterator[QueueFactory]:
    factory = QueueFactory(str(request.param))
    try:
        yield factory
    finally:
        await factory.close()
