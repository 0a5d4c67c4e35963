"""Reply jobs on the work queue: enqueued once their send is stored, consumed by every chat
process, and swept back onto the queue when their generator went away.

Why not the event outbox: the reply's `reply_jobs` row, written in the send's transaction, is
already the durable record of the job; the queue only carries it to a generator. So the send
enqueues right after its commit (in-process: microseconds, where an outbox relay wakes after
20 ms), and a sweep (every second, and at start-up) queues again any job whose lease lapsed or
that was never taken: a crash between commit and enqueue, or a generator that died."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from typing import Any

import structlog

from kibitz.kit.jobs import Job, JobQueue, Lease, Subscription
from kibitz.kit.tracing import continued_span, trace_headers
from kibitz.services.chat.config import ChatSettings
from kibitz.services.chat.models import utcnow
from kibitz.services.chat.replies.generate import ReplyGenerator
from kibitz.services.chat.replies.orders import REPLY_JOB, ReplyOrder, new_holder
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.storage import ChatDatabase

logger = structlog.get_logger("kibitz.chat")


class ReplyJobs:
    """This process's end of the reply queue: it enqueues, consumes and sweeps."""

    def __init__(
        self,
        *,
        queue: JobQueue,
        generator: ReplyGenerator,
        database: ChatDatabase,
        settings: ChatSettings,
    ) -> None:
        self.queue = queue
        self.generator = generator
        self.database = database
        self.settings = settings
        self._subscription: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # The next reply of a turn is queued like a send's.
        generator.turns.enqueue = self._enqueue_leased

    async def _enqueue_leased(self, order: ReplyOrder, holder: str) -> None:
        await self.enqueue(order, holder=holder)

    async def start(self) -> None:
        """Consume reply jobs and sweep (at once, then every `reply_sweep_seconds`)."""
        await self.queue.start()
        self._subscription = await self.queue.consume(
            REPLY_JOB, self._handle, concurrency=self.settings.reply_concurrency
        )
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        """Stop sweeping and consuming (replies being generated end as failed)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.queue.close()

    async def enqueue(self, order: ReplyOrder, *, holder: str) -> None:
        """Queue a stored send's reply; its first delivery holds the lease the send took."""
        payload: dict[str, Any] = {
            "message_id": str(order.message_id),
            "holder": holder,
            "leased_until": time.time() + self.settings.reply_lease_seconds,
            "order": order.to_payload(),
            # The send's trace, so the reply's work (the agent's call) joins it.
            "trace": trace_headers(),
        }
        await self.queue.enqueue(Job(id=str(order.message_id), kind=REPLY_JOB, payload=payload))

    async def _handle(self, lease: Lease) -> None:
        payload = lease.job.payload
        with continued_span(f"job {REPLY_JOB}", payload.get("trace")):
            await self.generator.handle(payload, redelivered=lease.attempt > 1)

    async def sweep(self) -> int:
        """Queue again every reply job nobody holds; how many."""
        now = utcnow()
        unclaimed_before = now - timedelta(seconds=self.settings.reply_lease_seconds)
        async with self.database.reading() as session:
            lapsed = await ReplyJobRepository(session).lapsed(
                now=now, unclaimed_before=unclaimed_before
            )
        queued = 0
        for message_id in lapsed:
            holder = new_holder()
            async with self.database.transaction() as session:
                handed = await ReplyJobRepository(session).hand_over(
                    message_id, holder=holder, lease_seconds=self.settings.reply_lease_seconds
                )
            if handed:
                payload = {"message_id": str(message_id), "holder": holder}
                job = Job(id=f"{message_id}/{holder}", kind=REPLY_JOB, payload=payload)
                await self.queue.enqueue(job)
                queued += 1
        if queued:
            logger.warning("chat_reply_jobs_reclaimed", count=queued)
        return queued

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.warning("chat_reply_sweep_failed")
            await asyncio.sleep(self.settings.reply_sweep_seconds)
