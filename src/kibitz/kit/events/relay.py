"""Events for a child process of `kibitz up`: the all-in-one bus lives in the parent's memory, so
the parent relays to a child, over loopback HTTP, the events its code subscribes or listens to.

The child's `RelayedBus` records each consumer (a group's, or a listener); its app answers
`GET /internal/events/consumers` and takes `POST /internal/events/{consumer}` (see `kit/app.py`).
Once the child is up, `relay_to` subscribes every consumer on the parent's bus (a group still
receives the events the bus logged before it came) and forwards each event. The child runs the
handler with the usual retries and dead letters; the parent retries only an unanswered post. The
parent owns the child's socket, so a post made while the child restarts waits for the new one.
A module apart publishes nothing: `publish` raises.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kibitz.kit.events.bus import (
    DeadLetterSink,
    EventBus,
    EventEnvelope,
    EventHandler,
    RetryPolicy,
    deliver_with_retry,
)
from kibitz.kit.subscription import Subscription

CONSUMERS_PATH = "/internal/events/consumers"
DELIVERY_PATH = "/internal/events/{consumer}"


class UnknownConsumer(LookupError):
    """The parent named a consumer this process does not have (any more)."""


class NotPublishable(RuntimeError):
    """A process whose events the parent relays publishes none (`Module.publishes_events`)."""


@dataclass
class _Consumer:
    names: list[str]
    group: str | None
    handler: EventHandler
    dead_letter: DeadLetterSink | None


class _Forget:
    """Cancelling a relayed subscription forgets its consumer: the parent's posts then 404."""

    def __init__(self, consumers: dict[str, _Consumer], consumer_id: str) -> None:
        self._consumers = consumers
        self._id = consumer_id

    async def cancel(self) -> None:
        self._consumers.pop(self._id, None)


class RelayedBus:
    """The bus of a child process: consumers recorded here, events posted by the parent."""

    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._consumers: dict[str, _Consumer] = {}

    def _add(self, base: str, consumer: _Consumer) -> Subscription:
        # Named by what it consumes, so a restarted child registers the same ids the parent
        # already forwards to.
        consumer_id, n = base, 1
        while consumer_id in self._consumers:
            n += 1
            consumer_id = f"{base}.{n}"
        self._consumers[consumer_id] = consumer
        return _Forget(self._consumers, consumer_id)

    async def publish(self, envelope: EventEnvelope) -> None:
        """Refused: the parent relays events to this process, not from it."""
        raise NotPublishable(f"{envelope.name}: a process apart publishes no events")

    async def subscribe(
        self,
        names: list[str],
        *,
        group: str,
        handler: EventHandler,
        dead_letter: DeadLetterSink | None = None,
    ) -> Subscription:
        """Record the group's consumer; the parent subscribes it on the real bus."""
        return self._add(group, _Consumer(list(names), group, handler, dead_letter))

    async def listen(self, names: list[str], *, handler: EventHandler) -> Subscription:
        """Record a listener; the parent listens for it on the real bus."""
        return self._add("listen." + ",".join(names), _Consumer(list(names), None, handler, None))

    def consumers(self) -> list[dict[str, Any]]:
        """What the parent subscribes for this process: `{id, names, group}` each."""
        return [
            {"id": consumer_id, "names": consumer.names, "group": consumer.group}
            for consumer_id, consumer in self._consumers.items()
        ]

    async def deliver(self, consumer_id: str, envelope: EventEnvelope) -> None:
        """Run the consumer's handler on one event (retried, then parked, as every backend
        does); UnknownConsumer if there is no such consumer."""
        consumer = self._consumers.get(consumer_id)
        if consumer is None:
            raise UnknownConsumer(consumer_id)
        await deliver_with_retry(
            envelope,
            group=consumer.group or consumer_id,
            handler=consumer.handler,
            dead_letter=consumer.dead_letter,
            policy=self.retry,
        )

    async def start(self) -> None:
        """Nothing to connect: the parent connects to this process."""

    async def close(self) -> None:
        """Forget every consumer."""
        self._consumers.clear()


# Posts an envelope to a consumer of the child: True once the child has handled it.
Forward = Callable[[str, EventEnvelope], Awaitable[bool]]


async def relay_to(
    bus: EventBus, consumers: list[dict[str, Any]], forward: Forward
) -> list[Subscription]:
    """Subscribe (or listen) on `bus` for each consumer a child named, forwarding its events;
    an event the child did not take raises, so the bus retries it."""
    subscriptions = []
    for consumer in consumers:
        handler = _forwarding(str(consumer["id"]), forward)
        names = [str(name) for name in consumer["names"]]
        if consumer.get("group"):
            subscriptions.append(
                await bus.subscribe(names, group=str(consumer["group"]), handler=handler)
            )
        else:
            subscriptions.append(await bus.listen(names, handler=handler))
    return subscriptions


def _forwarding(consumer_id: str, forward: Forward) -> EventHandler:
    async def forward_event(envelope: EventEnvelope) -> None:
        if not await forward(consumer_id, envelope):
            raise RuntimeError(f"the process apart did not take {envelope.name} ({consumer_id})")

    return forward_event
