"""The event bus: one small interface, backends chosen by configuration.

Delivery is at-least-once; consumers must be idempotent (see `outbox.py` for the inbox that
remembers handled event ids).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field

from kibitz.kit.ids import new_id

logger = structlog.get_logger("kibitz.events")


class Event(BaseModel):
    """Base of every event payload: a name `<service>.<past-tense fact>` and a version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]
    version: ClassVar[int] = 1


class EventEnvelope(BaseModel):
    """What travels on the bus: the payload plus id, name, version and time."""

    id: uuid.UUID = Field(default_factory=new_id)
    name: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    payload: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event) -> EventEnvelope:
        """Put an event payload into an envelope."""
        return cls(name=event.name, version=event.version, payload=event.model_dump(mode="json"))


EventHandler = Callable[[EventEnvelope], Awaitable[None]]


class EventBus(Protocol):
    """Publish events; subscribe a consumer group to event names."""

    async def publish(self, envelope: EventEnvelope) -> None:
        """Hand one event to the broker (returns once the broker has it)."""

    async def subscribe(self, names: list[str], *, group: str, handler: EventHandler) -> None:
        """Deliver every event named in `names` to one member of `group`."""

    async def start(self) -> None:
        """Connect and start delivering to subscribers."""

    async def close(self) -> None:
        """Stop delivering and disconnect."""


class InProcessBus:
    """All-in-one bus: each group's handler runs in this process, in a task of its own."""

    def __init__(self) -> None:
        self._groups: dict[str, list[tuple[str, EventHandler]]] = defaultdict(list)
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self, envelope: EventEnvelope) -> None:
        """Schedule every subscribed group's handler for the event."""
        for group, handler in self._groups.get(envelope.name, []):
            task = asyncio.create_task(self._deliver(group, handler, envelope))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, group: str, handler: EventHandler, envelope: EventEnvelope) -> None:
        try:
            await handler(envelope)
        except Exception:
            logger.exception("event_handler_failed", group=group, event=envelope.name)

    async def subscribe(self, names: list[str], *, group: str, handler: EventHandler) -> None:
        """Register the group's handler (one per group per name in one process)."""
        for name in names:
            entries = self._groups[name]
            entries[:] = [(g, h) for g, h in entries if g != group]
            entries.append((group, handler))

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Wait for handlers in flight."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def create_bus(url: str) -> EventBus:
    """The bus backend the URL names."""
    if url in ("", "memory"):
        return InProcessBus()
    raise ValueError(f"unsupported event bus URL scheme: {url.split(':', 1)[0]}")
