"""The consumer side of the outbox: handled event ids (duplicates skipped) and dead letters.

A handler runs in one database transaction together with the row that marks its event as
handled, so its effects happen exactly once even though the bus delivers at least once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db.database import Database, delete_in_batches, prune_quietly
from kibitz.kit.events.bus import (
    EVENTS_HANDLED,
    EventBus,
    EventEnvelope,
    EventHandler,
)
from kibitz.kit.ids import new_id
from kibitz.kit.subscription import Subscription

logger = structlog.get_logger("kibitz.inbox")

# 7 days: an event id is remembered that long, far beyond any broker's redelivery of it; then
# the row goes (the table would grow forever). Pruned at most once an hour, 1000 rows per
# transaction.
KEEP_HANDLED = timedelta(days=7)
_PRUNE_EVERY_SECONDS = 3600.0
_PRUNE_BATCH = 1000

TransactionalHandler = Callable[[AsyncSession, EventEnvelope], Awaitable[None]]


def define_inbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The `inbox` (handled event ids) and `dead_letters` tables, in the service's metadata."""
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer_group", String(100), primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("handled_at", DateTime(timezone=True), nullable=False, index=True),
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("consumer_group", String(100), nullable=False, index=True),
        Column("event_id", Uuid, nullable=False),
        Column("name", String(100), nullable=False),
        Column("envelope", JSON, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("parked_at", DateTime(timezone=True), nullable=False),
    )
    return inbox, dead_letters


class _DuplicateError(Exception):
    """The event was handled before; the transaction is rolled back."""


class Inbox:
    """Runs a service's event handlers exactly once per event id and parks the poison ones."""

    def __init__(self, database: Database, inbox: Table, dead_letters: Table) -> None:
        self.database = database
        self.inbox = inbox
        self.dead_letters = dead_letters
        # Built once: building and cache-keying a statement per call costs more than running it.
        self._insert_handled = inbox.insert().values(
            consumer_group=bindparam("consumer_group"),
            event_id=bindparam("event_id"),
            name=bindparam("name"),
            handled_at=bindparam("handled_at"),
        )
        self._next_prune = time.monotonic()

    def handler(self, group: str, handle: TransactionalHandler) -> EventHandler:
        """A bus handler that skips handled events and records the event id with the effects."""

        async def run(envelope: EventEnvelope) -> None:
            try:
                async with self.database.transaction() as session:
                    try:
                        await session.execute(
                            self._insert_handled,
                            {
                                "consumer_group": group,
                                "event_id": envelope.id,
                                "name": envelope.name,
                                "handled_at": datetime.now(UTC),
                            },
                        )
                    except IntegrityError as exc:
                        raise _DuplicateError from exc
                    await handle(session, envelope)
            except _DuplicateError:
                EVENTS_HANDLED.labels(group, envelope.name, "duplicate").inc()
                logger.info(
                    "event_duplicate_skipped",
                    group=group,
                    event_name=envelope.name,
                    event_id=str(envelope.id),
                )
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                cutoff = datetime.now(UTC) - KEEP_HANDLED
                await prune_quietly(self.prune_handled(handled_before=cutoff), what="inbox")

        return run

    async def prune_handled(self, *, handled_before: datetime) -> int:
        """Forget the events handled before `handled_before`; how many were forgotten."""
        condition = self.inbox.c.handled_at < handled_before
        return await delete_in_batches(self.database, self.inbox, condition, batch=_PRUNE_BATCH)

    async def park(self, group: str, envelope: EventEnvelope, error: str, attempts: int) -> None:
        """Record an event whose handler kept failing (the dead-letter sink)."""
        async with self.database.transaction() as session:
            await session.execute(
                self.dead_letters.insert().values(
                    id=new_id(),
                    consumer_group=group,
                    event_id=envelope.id,
                    name=envelope.name,
                    envelope=envelope.model_dump(mode="json"),
                    error=error[:2000],
                    attempts=attempts,
                    parked_at=datetime.now(UTC),
                )
            )

    async def subscribe(
        self, bus: EventBus, names: list[str], *, group: str, handle: TransactionalHandler
    ) -> Subscription:
        """Subscribe `handle` for the group, with duplicate skipping and dead-lettering."""
        return await bus.subscribe(
            names, group=group, handler=self.handler(group, handle), dead_letter=self.park
        )

    async def handled_count(self, group: str) -> int:
        """How many distinct events the group has handled."""
        async with self.database.transaction() as session:
            rows = await session.execute(
                select(self.inbox.c.event_id).where(self.inbox.c.consumer_group == group)
            )
            return len(rows.all())

    async def parked(self, group: str) -> list[dict[str, Any]]:
        """The group's dead letters, oldest first."""
        async with self.database.transaction() as session:
            rows = await session.execute(
                select(self.dead_letters)
                .where(self.dead_letters.c.consumer_group == group)
                .order_by(self.dead_letters.c.parked_at)
            )
            return [dict(row._mapping) for row in rows]
