"""The event bus: one small interface, backends chosen by configuration.

Delivery is at-least-once on every backend. A consumer group receives each event once across
its replicas; a failing handler is retried with backoff and, after `max_attempts`, parked with
the group's dead-letter sink (see `inbox.py`, which also skips duplicates by event id).

Backends: `memory` (in-process, all-in-one, here), `redis://…` (Redis Streams,
`redis_streams.py`) and `nats://…` (NATS JetStream, `nats_jetstream.py`); `create_bus` in the
package picks one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import structlog
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from kibitz.kit.ids import new_id
from kibitz.kit.subscription import (
    Subscription,
    TaskSubscription,
    replica_name,
    stop_tasks,
)
from kibitz.kit.tracing import active_tracer, continued_span

logger = structlog.get_logger("kibitz.events")

EVENTS_PUBLISHED = Counter(
    "kibitz_events_published_total", "Events handed to the bus", ["backend", "event"]
)
EVENTS_HANDLED = Counter(
    "kibitz_events_handled_total",
    "Event deliveries by outcome (ok, retry, dead_letter)",
    ["group", "event", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "kibitz_events_dead_lettered_total", "Events parked after their last try", ["group", "event"]
)
# Bus lag: from the moment an event happened (its envelope's time, set in the producer's
# transaction) to a consumer group starting on it: the outbox relay, the broker and the queue
# of events ahead of it, together.
EVENTS_LAG = Histogram(
    "kibitz_event_lag_seconds",
    "Time from an event's occurrence to a consumer group starting to handle it",
    ["group", "event"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

# Tries before an event is parked, and the backoff between them (s, doubling, capped).
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE_SECONDS = 0.1
_RETRY_CAP_SECONDS = 5.0


class Event(BaseModel):
    """Base of every event payload: a name `<service>.<past-tense fact>` and a version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]
    version: ClassVar[int] = 1


class EventEnvelope(BaseModel):
    """What travels on the bus: the payload plus id, name, version, time and headers (the
    producer's W3C trace context, `traceparent`/`tracestate`, when tracing is on)."""

    id: uuid.UUID = Field(default_factory=new_id)
    name: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any]
    headers: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def wrap(cls, event: Event) -> EventEnvelope:
        """Put an event payload into an envelope."""
        return cls(name=event.name, version=event.version, payload=event.model_dump(mode="json"))

    def to_bytes(self) -> bytes:
        """The wire form (JSON)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> EventEnvelope:
        """Parse the wire form."""
        return cls.model_validate_json(data)


EventHandler = Callable[[EventEnvelope], Awaitable[None]]
# Called with (group, envelope, error text, attempts) once a handler has given up.
DeadLetterSink = Callable[[str, EventEnvelope, str, int], Awaitable[None]]


class EventBus(Protocol):
    """Publish events; subscribe a consumer group to event names."""

    async def publish(self, envelope: EventEnvelope) -> None:
        """Hand one event to the broker (returns once the broker has it)."""

    async def subscribe(
        self,
        names: list[str],
        *,
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None = None,
    ) -> Subscription:
        """Deliver every event named in `names` to one replica of `group`."""

    async def listen(self, names: list[str], *, handler: EventHandler) -> Subscription:
        """Deliver to THIS replica every event named in `names` published from now on.

        For per-process state such as caches: no consumer group, no history, no dead letters
        (a failing handler is retried a few times, then the event is dropped and logged).
        """

    async def start(self) -> None:
        """Connect and start delivering to subscribers."""

    async def close(self) -> None:
        """Stop delivering and disconnect."""


async def _log_dead_letter(group: str, envelope: EventEnvelope, error: str, attempts: int) -> None:
    logger.error(
        "event_dead_lettered_without_sink",
        group=group,
        event_name=envelope.name,
        event_id=str(envelope.id),
        attempts=attempts,
        error=error,
    )


@dataclass(frozen=True)
class Retention:
    """How much a broker keeps of a stream, acknowledged or not: the oldest events go first
    once either bound is reached. Both stay far beyond any consumer's redelivery horizon (a
    failing event is retried for minutes, then parked in the consumer's own dead letters)."""

    # 7 days: a consumer down over a long weekend still finds its events.
    max_age_seconds: float = 7 * 24 * 3600.0
    # 1 GiB (JetStream: the whole stream); at ~1 KiB an event, about a million of them.
    max_bytes: int = 1024**3
    # Redis Streams: entries per event name's stream, trimmed approximately (`MAXLEN ~`).
    max_events: int = 1_000_000


@dataclass
class RetryPolicy:
    """How often and how patiently a failing handler is retried before its event is parked."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_seconds: float = DEFAULT_RETRY_BASE_SECONDS

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the given failed attempt (1-based)."""
        return float(min(self.base_seconds * 2 ** (attempt - 1), _RETRY_CAP_SECONDS))


async def deliver_with_retry(
    envelope: EventEnvelope,
    *,
    group: str,
    handler: EventHandler,
    dead_letter: DeadLetterSink | None,
    policy: RetryPolicy,
) -> None:
    """Run the handler until it succeeds or `max_attempts` tries failed; then park the event.

    Returns normally in both cases, so the caller acknowledges the event; it raises only if
    parking itself failed (then the broker redelivers later).
    """
    occurred = envelope.occurred_at
    if occurred.tzinfo is None:  # a producer that wrote it without its zone wrote UTC
        occurred = occurred.replace(tzinfo=UTC)
    lag = (datetime.now(UTC) - occurred).total_seconds()
    EVENTS_LAG.labels(group, envelope.name).observe(max(0.0, lag))
    error = ""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            if active_tracer() is None:
                await handler(envelope)
            else:
                await _traced(handler, envelope, group=group, attempt=attempt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.warning(
                "event_handler_failed",
                group=group,
                event_name=envelope.name,
                event_id=str(envelope.id),
                attempt=attempt,
                error=error,
            )
            if attempt < policy.max_attempts:
                EVENTS_HANDLED.labels(group, envelope.name, "retry").inc()
                await asyncio.sleep(policy.delay(attempt))
            continue
        EVENTS_HANDLED.labels(group, envelope.name, "ok").inc()
        return
    sink = dead_letter or _log_dead_letter
    await sink(group, envelope, error, policy.max_attempts)
    EVENTS_HANDLED.labels(group, envelope.name, "dead_letter").inc()
    EVENTS_DEAD_LETTERED.labels(group, envelope.name).inc()
    logger.error(
        "event_dead_lettered",
        group=group,
        event_name=envelope.name,
        event_id=str(envelope.id),
        attempts=policy.max_attempts,
        error=error,
    )


async def _traced(
    handler: EventHandler, envelope: EventEnvelope, *, group: str, attempt: int
) -> None:
    """One try of a handler in a consumer span continuing the producer's trace."""
    attributes = {
        "messaging.operation.type": "process",
        "messaging.destination.name": envelope.name,
        "messaging.consumer.group.name": group,
        "messaging.message.id": str(envelope.id),
        "kibitz.attempt": attempt,
    }
    with continued_span(f"process {envelope.name}", envelope.headers, attributes=attributes):
        await handler(envelope)


class InProcessBus:
    """All-in-one bus with broker semantics: groups, one replica per event, retries, dead letters.

    Like a stream, it keeps recent events (`history` of them) so a group that subscribes
    after an event was published still receives it (start-up order does not lose events).
    """

    def __init__(self, *, retry: RetryPolicy | None = None, history: int = 10_000) -> None:
        self.retry = retry or RetryPolicy()
        self._log: dict[str, deque[EventEnvelope]] = defaultdict(lambda: deque(maxlen=history))
        # One queue per (group, event name), shared by the group's replicas.
        self._queues: dict[tuple[str, str], asyncio.Queue[EventEnvelope]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: dict[tuple[str, str], set[asyncio.Task[None]]] = defaultdict(set)

    async def publish(self, envelope: EventEnvelope) -> None:
        """Append the event to its log and queue it for every group subscribed to its name."""
        self._log[envelope.name].append(envelope)
        EVENTS_PUBLISHED.labels("memory", envelope.name).inc()
        for (_, name), queue in self._queues.items():
            if name == envelope.name:
                queue.put_nowait(envelope)

    async def subscribe(
        self,
        names: list[str],
        *,
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None = None,
    ) -> Subscription:
        """Add a replica to the group; a new group first receives the events already logged."""
        tasks = []
        for name in dict.fromkeys(names):
            queue = self._queues.get((group, name))
            if queue is None:
                queue = self._queues[(group, name)] = asyncio.Queue()
                for envelope in self._log.get(name, ()):
                    queue.put_nowait(envelope)
            task = asyncio.create_task(self._work(group, queue, handler, dead_letter))
            self._workers[(group, name)].add(task)
            task.add_done_callback(self._workers[(group, name)].discard)
            tasks.append(task)
        return TaskSubscription(self._tasks, tasks)

    async def listen(self, names: list[str], *, handler: EventHandler) -> Subscription:
        """A private queue per name that receives events published from now on."""
        group = replica_name("listener")
        tasks = []
        for name in dict.fromkeys(names):
            queue: asyncio.Queue[EventEnvelope] = asyncio.Queue()
            self._queues[(group, name)] = queue
            task = asyncio.create_task(self._work(group, queue, handler, None))
            self._workers[(group, name)].add(task)
            task.add_done_callback(self._workers[(group, name)].discard)
            tasks.append(task)

        def forget_queues() -> None:
            for name in names:
                self._queues.pop((group, name), None)

        return TaskSubscription(self._tasks, tasks, on_cancel=forget_queues)

    async def _work(
        self,
        group: str,
        queue: asyncio.Queue[EventEnvelope],
        handler: EventHandler,
        dead_letter: DeadLetterSink | None,
    ) -> None:
        while True:
            envelope = await queue.get()
            try:
                await deliver_with_retry(
                    envelope,
                    group=group,
                    handler=handler,
                    dead_letter=dead_letter,
                    policy=self.retry,
                )
            except asyncio.CancelledError:
                # Not handled: give it back to another replica of the group.
                queue.put_nowait(envelope)
                raise
            except Exception:
                logger.exception("event_delivery_failed", group=group, event_name=envelope.name)
            finally:
                queue.task_done()

    async def drain(self, within_seconds: float = 5.0) -> None:
        """Wait (up to `within_seconds`) until every queued event has been handled."""
        served = [queue for key, queue in self._queues.items() if self._workers[key]]
        if not served:
            return
        try:
            await asyncio.wait_for(
                asyncio.gather(*(queue.join() for queue in served)), timeout=within_seconds
            )
        except TimeoutError:
            logger.warning("in_process_bus_drain_timed_out")

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Let queued events finish (briefly), then stop every replica."""
        await self.drain()
        await stop_tasks(self._tasks)


def split_bus_url(url: str, *keys: str) -> tuple[str, dict[str, str]]:
    """The URL without kibitz's own query options, and those options (e.g. `prefix`)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    options = {key: query.pop(key)[-1] for key in keys if key in query}
    rest = urlencode({k: v[-1] for k, v in query.items()})
    return urlunsplit(parts._replace(query=rest)), options
