"""Redis Streams job queue: a stream per kind, one consumer group that every consumer joins.

- Enqueue: one script call that remembers the job id for `DEDUPE_SECONDS` (SET NX) and XADDs
  the job (`MAXLEN ~`); an id seen within that window is not added again.
- Claim: XREADGROUP `>` takes new jobs; every consumer also runs XAUTOCLAIM (min idle = the
  lease) about once a second, so a job whose holder died comes back within lease + ~1 s.
- Renew: a script checks the job is still pending for this consumer (XPENDING) and XCLAIMs it
  JUSTID, which resets its idle time without counting a delivery; False once another took it.
- Complete: XACK + XDEL in one script, so done work leaves the stream and XLEN is the
  depth (waiting + leased). Release: a script that re-adds the job with attempt + 1 and
  removes the old entry, if this consumer still holds it.
- Attempt: the entry's own `attempt` (1, or more after releases) plus the deliveries Redis
  counted beyond the first (each XAUTOCLAIM is one), read with XPENDING on a reclaim.

Measured (`bench/job_queue.py --url redis://…`, loopback Redis 7.0, shared 2-core box):
enqueue → handler start 0.43 to 0.50 ms median, → complete returned 0.73 ms; 0.65 ms of
client CPU per job (enqueue, read, complete: producer and consumer in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import structlog
from redis.exceptions import ResponseError

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
from kibitz.kit.redis_client import redis_client
from kibitz.kit.subscription import (
    Subscription,
    TaskSubscription,
    raise_if_cancelling,
    replica_name,
    stop_tasks,
)

logger = structlog.get_logger("kibitz.jobs.redis")

DEFAULT_PREFIX = "kibitz.jobs"
GROUP = "workers"
# Streams are capped (approximately) at this many entries: far beyond any backlog a healthy
# deployment has; past it the oldest waiting jobs are trimmed (issue 15: no unbounded stream).
MAX_STREAM_LENGTH = 100_000
# 2 min: an enqueue repeated within this (an outbox relay's retry) is dropped, like JetStream's
# duplicate window.
DEDUPE_SECONDS = 120
# 1 s at most between XAUTOCLAIM rounds (and so the longest XREADGROUP block).
_MAX_CLAIM_INTERVAL_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 5.0
# A consumer that holds nothing and has not read for 10 min belonged to a process that died
# (a live one reads at least every second); each consumer looks for them every 5 min.
_DEAD_CONSUMER_IDLE_MS = 600_000
_PRUNE_EVERY_SECONDS = 300.0

_ENQUEUE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*',
             'id', ARGV[1], 'payload', ARGV[2], 'attempt', ARGV[3])
  return 1
end
return 0
"""
# KEYS: stream; ARGV: group, consumer, entry id.
_RENEW = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""
# KEYS: stream; ARGV: group, entry id. One script call costs the client two thirds of the CPU
# of a MULTI/XACK/XDEL/EXEC transaction (160 against 250 µs per acknowledgement, measured).
_REMOVE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""
# KEYS: stream; ARGV: group, consumer, entry id, job id, payload, next attempt, max length.
_GIVE_BACK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*',
           'id', ARGV[4], 'payload', ARGV[5], 'attempt', ARGV[6])
return 1
"""


class _RedisLease(LeaseBase):
    def __init__(
        self,
        queue: RedisStreamsJobQueue,
        stream: str,
        consumer: str,
        entry_id: Any,
        job: Job,
        attempt: int,
    ) -> None:
        super().__init__(job, attempt)
        self._queue = queue
        self._stream = stream
        self._consumer = consumer
        self._entry_id = entry_id

    async def renew(self) -> bool:
        held = await self._queue._renew(
            keys=[self._stream], args=[GROUP, self._consumer, self._entry_id]
        )
        return bool(held)

    async def _acknowledge(self) -> None:
        await self._queue._remove(keys=[self._stream], args=[GROUP, self._entry_id])

    async def _give_back(self) -> None:
        job = self.job
        await self._queue._give_back(
            keys=[self._stream],
            args=[
                GROUP,
                self._consumer,
                self._entry_id,
                job.id,
                json.dumps(job.payload),
                self.attempt + 1,
                MAX_STREAM_LENGTH,
            ],
        )


class RedisStreamsJobQueue:
    """The job queue on Redis Streams (redis-py asyncio)."""

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
        self._redis = redis_client(url)
        self._enqueue = self._redis.register_script(_ENQUEUE)
        self._renew = self._redis.register_script(_RENEW)
        self._give_back = self._redis.register_script(_GIVE_BACK)
        self._remove = self._redis.register_script(_REMOVE)
        self._tasks: set[asyncio.Task[None]] = set()

    def stream_of(self, kind: str) -> str:
        """The stream key that holds jobs of this kind."""
        return f"{self.prefix}.{self.namespace}.{kind}"

    async def enqueue(self, job: Job) -> None:
        """Add the job to its stream unless its id was enqueued within `DEDUPE_SECONDS`."""
        added = await self._enqueue(
            keys=[self.stream_of(job.kind), f"{self.prefix}.{self.namespace}:seen:{job.id}"],
            args=[job.id, json.dumps(job.payload), 1, MAX_STREAM_LENGTH, DEDUPE_SECONDS],
        )
        if added:
            count_enqueued(job.kind).inc()

    async def consume(self, kind: str, handler: JobHandler, *, concurrency: int) -> Subscription:
        """Join the kind's consumer group as a new consumer running up to `concurrency` jobs."""
        slots = HandlerSlots(concurrency)
        task = asyncio.create_task(
            self._consume(self.stream_of(kind), kind, replica_name(kind), handler, slots)
        )
        return TaskSubscription(self._tasks, [task])

    async def _consume(
        self, stream: str, kind: str, consumer: str, handler: JobHandler, slots: HandlerSlots
    ) -> None:
        loop = asyncio.get_running_loop()
        claim_every = min(self.lease_seconds / 2, _MAX_CLAIM_INTERVAL_SECONDS)
        backoff = 0.1
        group_ready = False
        next_claim = 0.0
        next_prune = loop.time() + _PRUNE_EVERY_SECONDS
        try:
            while True:
                # Some client calls swallow a cancellation that lands mid-read: stop anyway.
                raise_if_cancelling(None)
                free = await slots.free()
                try:
                    if not group_ready:
                        await self._ensure_group(stream)
                        group_ready = True
                    if loop.time() >= next_claim:
                        free -= await self._reclaim(stream, kind, consumer, handler, slots, free)
                        next_claim = loop.time() + claim_every
                    if loop.time() >= next_prune:
                        await self._prune_consumers(stream)
                        next_prune = loop.time() + _PRUNE_EVERY_SECONDS
                    if free > 0:
                        replies: Any = await self._redis.xreadgroup(
                            GROUP,
                            consumer,
                            {stream: ">"},
                            count=free,
                            block=int(claim_every * 1000),
                        )
                        for _, entries in replies or []:
                            for entry in entries:
                                self._serve(stream, kind, consumer, entry, 1, handler, slots)
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise_if_cancelling(exc)
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        # The stream or group vanished (e.g. deleted): create them again.
                        group_ready = False
                        continue
                    logger.warning("redis_jobs_consume_failed", kind=kind, error=repr(exc))
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
        finally:
            await slots.stop()
            # Gone from the group once it holds nothing, so restarts do not pile up consumers.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._prune_consumers(stream, also=consumer), 2.0)

    async def _ensure_group(self, stream: str) -> None:
        try:
            # "0": jobs enqueued before the first consumer started are delivered too.
            await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _prune_consumers(self, stream: str, *, also: str | None = None) -> None:
        """Remove the group's consumers that hold nothing and are long idle (and `also`, if it
        holds nothing): XGROUP DELCONSUMER would drop a holder's pending jobs, so never those."""
        consumers: Any = await self._redis.xinfo_consumers(stream, GROUP)
        for info in consumers:
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if int(info["pending"]) == 0 and (
                name == also or int(info["idle"]) > _DEAD_CONSUMER_IDLE_MS
            ):
                await self._redis.xgroup_delconsumer(stream, GROUP, name)

    async def _reclaim(
        self,
        stream: str,
        kind: str,
        consumer: str,
        handler: JobHandler,
        slots: HandlerSlots,
        free: int,
    ) -> int:
        """Take over up to `free` jobs whose lease lapsed; how many were taken."""
        reply: Any = await self._redis.xautoclaim(
            stream,
            GROUP,
            consumer,
            min_idle_time=int(self.lease_seconds * 1000),
            start_id="0-0",
            count=free,
        )
        # Entries trimmed while pending come back without fields (Redis 7 drops them itself).
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if fields is not None]
        if not entries:
            return 0
        # Deliveries counted so far (this reclaim included), from the pending entries list.
        pending: Any = await self._redis.xpending_range(
            stream,
            GROUP,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 2 + 10,
            consumername=consumer,
        )
        deliveries = {item["message_id"]: int(item["times_delivered"]) for item in pending}
        for entry in entries:
            JOBS_RECLAIMED.labels(kind).inc()
            delivered = max(deliveries.get(entry[0], 2), 2)
            logger.info("job_reclaimed", kind=kind, entry_id=str(entry[0]), delivered=delivered)
            self._serve(stream, kind, consumer, entry, delivered, handler, slots)
        return len(entries)

    def _serve(
        self,
        stream: str,
        kind: str,
        consumer: str,
        entry: tuple[Any, dict[bytes, bytes]],
        delivered: int,
        handler: JobHandler,
        slots: HandlerSlots,
    ) -> None:
        """Run the handler on one delivered entry in a free slot (drop it if unreadable)."""
        entry_id, fields = entry
        try:
            job = Job(id=fields[b"id"].decode(), kind=kind, payload=json.loads(fields[b"payload"]))
            attempt = int(fields.get(b"attempt", b"1")) + delivered - 1
        except Exception:
            logger.error("redis_job_unreadable", kind=kind, entry_id=str(entry_id))
            slots.start(self._remove(keys=[stream], args=[GROUP, entry_id]))
            return
        lease = _RedisLease(self, stream, consumer, entry_id, job, attempt)
        renew_every = renew_interval(self.lease_seconds)
        slots.start(
            serve_lease(lease, handler, renew_every=renew_every, max_attempts=self.max_attempts)
        )

    async def depth(self, kind: str) -> int:
        """Jobs of `kind` waiting or leased (done ones are deleted, so the stream's length)."""
        return int(await self._redis.xlen(self.stream_of(kind)))

    async def start(self) -> None:
        """Nothing to do up front: connections open lazily and recover on their own."""

    async def close(self) -> None:
        """Stop every consumer (releasing what they hold) and close the connection pool."""
        await stop_tasks(self._tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.aclose(), 5.0)
