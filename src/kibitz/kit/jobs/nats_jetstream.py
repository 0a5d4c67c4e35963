"""NATS JetStream job queue: a work-queue stream per namespace, a durable pull consumer per kind.

- Subjects are `jobs.<prefix>.<namespace>.<kind>`: led by `jobs.` so that they never overlap
  the event bus's `<prefix>.>` when both are configured with the same `?prefix=` (JetStream
  refuses two streams over one subject).
- The stream keeps a message until it is acknowledged (retention `workqueue`), within limits of
  age and size (issue 15); `Nats-Msg-Id` = the job id makes a repeated enqueue within the
  duplicate window a no-op.
- Every consumer of a kind pulls from the same durable consumer, `ack_wait` = the lease: kit
  renews with `in_progress()` while the handler runs, and a job whose holder died is delivered
  again once the wait lapses. `max_deliver` bounds redeliveries as a backstop to kit's own
  attempt limit.
- Release publishes the job again with attempt + 1 (its own message id) and acknowledges the
  old message, so the server's delivery count counts lapses only: attempt = the message's own
  attempt + `num_delivered` - 1, and a delivery with `num_delivered` > 1 is a reclaim.
- Renewal cannot tell a lost lease (the server answers nothing to `in_progress`).

Measured (`bench/job_queue.py --url nats://…`, loopback nats-server, shared 2-core box):
enqueue → handler start 0.49 ms median (0.94 ms p99); 0.48 ms of client CPU per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from kibitz.kit.jobs.queue import (
    DEFAULT_MAX_ATTEMPTS,
    JOBS_RECLAIMED,
    HandlerSlots,
    Job,
    JobHandler,
    LeaseBase,
    count_enqueued,
    renew_interval,
    serve_lease,
)
from kibitz.kit.nats_streams import JetStreamConnection, stream_token
from kibitz.kit.subscription import (
    Subscription,
    TaskSubscription,
    raise_if_cancelling,
    stop_tasks,
)

logger = structlog.get_logger("kibitz.jobs.nats")

DEFAULT_PREFIX = "kibitz"
# Retention limits of a queue's stream: far beyond any backlog a healthy deployment has and any
# lease or redelivery horizon (seconds); past them the oldest jobs go.
MAX_AGE_SECONDS = 24 * 3600.0
MAX_MESSAGES = 100_000
# 256 MiB: 100 000 jobs of a couple of KiB; JetStream reserves a stream's size limit on disk.
MAX_BYTES = 256 * 1024**2
# 2 min: an enqueue repeated within this (an outbox relay's retry) is dropped by the server.
DUPLICATE_WINDOW_SECONDS = 120.0
# 1 s: how long one pull waits for a job.
_FETCH_SECONDS = 1.0
# 3 s: how long a publish waits for the server's acknowledgement.
_PUBLISH_TIMEOUT_SECONDS = 3.0
_MAX_BACKOFF_SECONDS = 5.0


def _body(job: Job, attempt: int) -> bytes:
    return json.dumps({"id": job.id, "payload": job.payload, "attempt": attempt}).encode()


class _NatsLease(LeaseBase):
    def __init__(self, queue: NatsJetStreamJobQueue, message: Any, job: Job, attempt: int) -> None:
        super().__init__(job, attempt)
        self._queue = queue
        self._message = message

    async def renew(self) -> bool:
        await self._message.in_progress()
        return True

    async def _acknowledge(self) -> None:
        await self._message.ack()

    async def _give_back(self) -> None:
        # Published before the old one is acknowledged: a crash in between runs the job twice
        # rather than never (at-least-once).
        await self._queue._publish(self.job, self.attempt + 1)
        await self._message.ack()


class NatsJetStreamJobQueue:
    """The job queue on NATS JetStream (nats-py)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        prefix: str | None = None,
        lease_seconds: float = 5.0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.prefix = prefix or DEFAULT_PREFIX
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.root = f"jobs.{self.prefix}.{namespace}"
        self._connection = JetStreamConnection(
            url,
            StreamConfig(
                name=stream_token(f"JOBS_{self.prefix}_{namespace}").upper(),
                subjects=[f"{self.root}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                max_age=MAX_AGE_SECONDS,
                max_msgs=MAX_MESSAGES,
                max_bytes=MAX_BYTES,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            ),
        )
        self.stream = self._connection.stream
        self._tasks: set[asyncio.Task[None]] = set()

    def subject_of(self, kind: str) -> str:
        """The subject that carries jobs of this kind."""
        return f"{self.root}.{kind}"

    async def _jetstream(self) -> JetStreamContext:
        return await self._connection.jetstream()

    async def _publish(self, job: Job, attempt: int) -> bool:
        js = await self._jetstream()
        # The first enqueue carries the bare job id, which the duplicate window keys on; a
        # give-back is a new message of its own.
        message_id = job.id if attempt == 1 else f"{job.id}#{attempt}"
        ack = await js.publish(
            self.subject_of(job.kind), _body(job, attempt), headers={"Nats-Msg-Id": message_id}
        )
        return not ack.duplicate

    async def enqueue(self, job: Job) -> None:
        """Publish the job and wait for JetStream's acknowledgement."""
        if await self._publish(job, 1):
            count_enqueued(job.kind).inc()

    async def consume(self, kind: str, handler: JobHandler, *, concurrency: int) -> Subscription:
        """Pull jobs of `kind` from its durable consumer, running up to `concurrency` at once."""
        slots = HandlerSlots(concurrency)
        task = asyncio.create_task(self._consume(kind, handler, slots))
        return TaskSubscription(self._tasks, [task])

    async def _pull_subscription(self, kind: str) -> Any:
        js = await self._jetstream()
        durable = stream_token(kind)
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.lease_seconds,
            # One more than kit's limit, so kit sees the last delivery and drops it itself.
            max_deliver=self.max_attempts + 1,
            filter_subject=self.subject_of(kind),
        )
        return await js.pull_subscribe(
            self.subject_of(kind), durable=durable, stream=self.stream, config=config
        )

    async def _consume(self, kind: str, handler: JobHandler, slots: HandlerSlots) -> None:
        backoff = 0.1
        subscription: Any = None
        try:
            while True:
                # Some client calls swallow a cancellation that lands mid-read: stop anyway.
                raise_if_cancelling(None)
                await slots.free()
                try:
                    if subscription is None:
                        subscription = await self._pull_subscription(kind)
                    try:
                        # One at a time: a message pulled ahead would wait unstarted while its
                        # lease runs down.
                        messages = await subscription.fetch(batch=1, timeout=_FETCH_SECONDS)
                    except (TimeoutError, NatsTimeoutError):
                        continue
                    for message in messages:
                        self._serve(kind, message, handler, slots)
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise_if_cancelling(exc)
                    logger.warning("nats_jobs_consume_failed", kind=kind, error=repr(exc))
                    if isinstance(exc, NotFoundError):
                        # The stream or consumer was removed: build both again.
                        self._connection.forget_stream()
                        subscription = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
        finally:
            await slots.stop()
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    def _serve(self, kind: str, message: Any, handler: JobHandler, slots: HandlerSlots) -> None:
        """Run the handler on one delivered message in a free slot (drop it if unreadable)."""
        try:
            body = json.loads(message.data)
            job = Job(id=str(body["id"]), kind=kind, payload=dict(body["payload"]))
            delivered = int(message.metadata.num_delivered)
            attempt = int(body.get("attempt", 1)) + delivered - 1
        except Exception:
            logger.error("nats_job_unreadable", kind=kind, subject=message.subject)
            slots.start(message.ack())
            return
        if delivered > 1:
            JOBS_RECLAIMED.labels(kind).inc()
            logger.info("job_reclaimed", kind=kind, job_id=job.id, delivered=delivered)
        lease = _NatsLease(self, message, job, attempt)
        renew_every = renew_interval(self.lease_seconds)
        slots.start(
            serve_lease(lease, handler, renew_every=renew_every, max_attempts=self.max_attempts)
        )

    async def depth(self, kind: str) -> int:
        """Jobs of `kind` waiting or leased (acknowledged ones leave a work-queue stream)."""
        js = await self._jetstream()
        subject = self.subject_of(kind)
        info = await js.stream_info(self.stream, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def start(self) -> None:
        """Nothing to do up front: the connection opens lazily and reconnects on its own."""

    async def close(self) -> None:
        """Stop every consumer (releasing what they hold) and drain the connection."""
        await stop_tasks(self._tasks)
        await self._connection.close()
