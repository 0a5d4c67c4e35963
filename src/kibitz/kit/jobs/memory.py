"""The in-process job queue (all-in-one): an asyncio queue per kind, no broker, no leases to lapse.

If the process dies its jobs die with it; the domain sweeps what it left behind at start-up.
Leases are not renewed (nothing can reclaim them), so a job costs a queue put and a get.

Measured (`bench/job_queue.py`, 20 000 jobs one at a time on the shared 2-core dev box):
enqueue → handler start 8.7 µs median (20 µs p99), enqueue → handler → complete 10.2 µs median
(24 µs p99), against 4.7 µs for the bare asyncio.Queue hand-off to a worker underneath it.
Keeping the labelled metric children (`queue.count_enqueued`) took 2 µs off the start.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog

from kibitz.kit.jobs.queue import (
    DEFAULT_MAX_ATTEMPTS,
    Job,
    JobHandler,
    LeaseBase,
    count_enqueued,
    serve_lease,
)
from kibitz.kit.subscription import Subscription, TaskSubscription, stop_tasks

logger = structlog.get_logger("kibitz.jobs.memory")


class _InProcessLease(LeaseBase):
    def __init__(self, queue: InProcessJobQueue, job: Job, attempt: int) -> None:
        super().__init__(job, attempt)
        self._queue = queue

    async def _acknowledge(self) -> None:
        self._queue._finish(self.job)

    async def _give_back(self) -> None:
        self._queue._requeue(self.job, self.attempt + 1)


class InProcessJobQueue:
    """All-in-one queue: FIFO per kind, at most `concurrency` handlers per consumer."""

    def __init__(
        self, *, lease_seconds: float = 5.0, max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._waiting: dict[str, asyncio.Queue[tuple[Job, int]]] = {}
        # Ids waiting or leased: enqueueing one of them again does nothing.
        self._live: set[str] = set()
        self._leased: defaultdict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()

    def _queue_of(self, kind: str) -> asyncio.Queue[tuple[Job, int]]:
        queue = self._waiting.get(kind)
        if queue is None:
            queue = self._waiting[kind] = asyncio.Queue()
        return queue

    async def enqueue(self, job: Job) -> None:
        """Queue the job unless one with its id is waiting or leased."""
        if job.id in self._live:
            return
        self._live.add(job.id)
        self._queue_of(job.kind).put_nowait((job, 1))
        count_enqueued(job.kind).inc()

    async def consume(self, kind: str, handler: JobHandler, *, concurrency: int) -> Subscription:
        """Start `concurrency` workers taking jobs of `kind` in order."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        queue = self._queue_of(kind)
        tasks = [asyncio.create_task(self._work(queue, handler)) for _ in range(concurrency)]
        return TaskSubscription(self._tasks, tasks)

    async def _work(self, queue: asyncio.Queue[tuple[Job, int]], handler: JobHandler) -> None:
        while True:
            job, attempt = await queue.get()
            self._leased[job.kind] += 1
            lease = _InProcessLease(self, job, attempt)
            try:
                await serve_lease(lease, handler, renew_every=None, max_attempts=self.max_attempts)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("job_serving_failed", kind=job.kind, job_id=job.id)

    def _finish(self, job: Job) -> None:
        self._leased[job.kind] -= 1
        self._live.discard(job.id)

    def _requeue(self, job: Job, attempt: int) -> None:
        self._leased[job.kind] -= 1
        self._queue_of(job.kind).put_nowait((job, attempt))

    async def depth(self, kind: str) -> int:
        """Jobs of `kind` waiting or leased."""
        queue = self._waiting.get(kind)
        return (queue.qsize() if queue is not None else 0) + self._leased[kind]

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Stop every worker; the jobs they held go back to their queues (and die with us)."""
        await stop_tasks(self._tasks)
