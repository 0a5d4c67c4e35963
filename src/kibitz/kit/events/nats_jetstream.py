"""NATS JetStream backend: one stream for every event subject, a durable pull consumer per group.

Subjects are `<prefix>.<event name>`; the stream (created when missing) captures `<prefix>.>`.
Replicas of a group pull from the same durable consumer, so each event goes to one of them.
Publishing sets `Nats-Msg-Id` to the event id: a re-publish by the outbox relay after a lost
acknowledgement is dropped by the server's duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from kibitz.kit.events.bus import (
    EVENTS_PUBLISHED,
    DeadLetterSink,
    EventEnvelope,
    EventHandler,
    Retention,
    RetryPolicy,
    deliver_with_retry,
)
from kibitz.kit.nats_streams import JetStreamConnection, stream_token
from kibitz.kit.subscription import (
    Subscription,
    TaskSubscription,
    raise_if_cancelling,
    stop_tasks,
)

logger = structlog.get_logger("kibitz.bus.nats")

DEFAULT_PREFIX = "kibitz.events"
_BATCH = 20
# 1 s: how long one fetch waits for new events.
_FETCH_SECONDS = 1.0
# 3 s: how long a publish waits for the server's acknowledgement.
_PUBLISH_TIMEOUT_SECONDS = 3.0
_MAX_BACKOFF_SECONDS = 5.0
# 5 min: a listener's ephemeral consumer outlives short outages, then the server drops it.
_LISTENER_IDLE_SECONDS = 300.0


class NatsJetStreamBus:
    """The event bus on NATS JetStream (nats-py)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        retry: RetryPolicy | None = None,
        ack_wait_seconds: float = 30.0,
        retention: Retention | None = None,
    ) -> None:
        self.url = url
        self.retention = retention or Retention()
        self.prefix = prefix or DEFAULT_PREFIX
        self._connection = JetStreamConnection(
            url,
            StreamConfig(
                name=stream_token(self.prefix).upper(),
                subjects=[f"{self.prefix}.>"],
                # 2 min: a relay's re-publish of the same event id within this is dropped.
                duplicate_window=120.0,
                # Limits retention: the oldest events go once either bound is reached.
                max_age=self.retention.max_age_seconds,
                max_bytes=self.retention.max_bytes,
            ),
        )
        self.stream = self._connection.stream
        self.retry = retry or RetryPolicy()
        self.ack_wait_seconds = ack_wait_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def subject_of(self, name: str) -> str:
        """The subject that carries events of this name."""
        return f"{self.prefix}.{name}"

    async def _jetstream(self) -> JetStreamContext:
        return await self._connection.jetstream()

    async def publish(self, envelope: EventEnvelope) -> None:
        """Publish and wait for JetStream's acknowledgement (raises while NATS is unreachable)."""
        js = await self._jetstream()
        await js.publish(
            self.subject_of(envelope.name),
            envelope.to_bytes(),
            headers={"Nats-Msg-Id": str(envelope.id)},
        )
        EVENTS_PUBLISHED.labels("nats", envelope.name).inc()

    async def subscribe(
        self,
        names: list[str],
        *,
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None = None,
    ) -> Subscription:
        """Start a replica of `group`: one pull loop per event name on the group's durables."""
        tasks = []
        for name in dict.fromkeys(names):
            task = asyncio.create_task(self._consume(name, group, handler, dead_letter))
            tasks.append(task)
        return TaskSubscription(self._tasks, tasks)

    async def listen(self, names: list[str], *, handler: EventHandler) -> Subscription:
        """An ephemeral consumer per name from now on (every replica gets every event)."""
        tasks = []
        for name in dict.fromkeys(names):
            task = asyncio.create_task(self._consume(name, None, handler, None))
            tasks.append(task)
        return TaskSubscription(self._tasks, tasks)

    async def _pull_subscription(self, name: str, group: str | None) -> Any:
        js = await self._jetstream()
        if group is None:
            # A listener: ephemeral, new events only, removed by the server once idle.
            ephemeral = ConsumerConfig(
                deliver_policy=DeliverPolicy.NEW,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait_seconds,
                inactive_threshold=_LISTENER_IDLE_SECONDS,
            )
            return await js.pull_subscribe(
                self.subject_of(name), stream=self.stream, config=ephemeral
            )
        durable = stream_token(f"{group}__{name}")
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_seconds,
            max_deliver=-1,
        )
        return await js.pull_subscribe(
            self.subject_of(name), durable=durable, stream=self.stream, config=config
        )

    async def _consume(
        self,
        name: str,
        group: str | None,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None,
    ) -> None:
        backoff = 0.1
        subscription: Any = None
        while True:
            # Some client calls swallow a cancellation that lands mid-read: stop anyway.
            raise_if_cancelling(None)
            try:
                if subscription is None:
                    subscription = await self._pull_subscription(name, group)
                try:
                    messages = await subscription.fetch(batch=_BATCH, timeout=_FETCH_SECONDS)
                except (TimeoutError, NatsTimeoutError):
                    continue
                for message in messages:
                    await self._handle(message, group or "listener", handler, dead_letter)
                backoff = 0.1
            except asyncio.CancelledError:
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                raise
            except Exception as exc:
                raise_if_cancelling(exc)
                logger.warning("nats_consume_failed", group=group, event_name=name, error=repr(exc))
                if isinstance(exc, NotFoundError):
                    # The stream or consumer was removed: build both again.
                    self._connection.forget_stream()
                    subscription = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    async def _handle(
        self, message: Any, group: str, handler: EventHandler, dead_letter: DeadLetterSink | None
    ) -> None:
        try:
            envelope = EventEnvelope.from_bytes(message.data)
        except Exception:
            logger.error("nats_event_unreadable", group=group, subject=message.subject)
            await message.term()
            return
        await deliver_with_retry(
            envelope, group=group, handler=handler, dead_letter=dead_letter, policy=self.retry
        )
        await message.ack()

    async def start(self) -> None:
        """Nothing to do up front: the connection opens lazily and reconnects on its own."""

    async def close(self) -> None:
        """Stop every replica and drain the connection."""
        await stop_tasks(self._tasks)
        await self._connection.close()
