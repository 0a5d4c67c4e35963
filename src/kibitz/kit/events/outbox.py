"""Transactional outbox: events are written in the transaction that causes them, then relayed."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    Row,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    select,
    update,
)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from kibitz.kit.db.database import Database, delete_in_batches, prune_quietly
from kibitz.kit.events.bus import Event, EventBus, EventEnvelope
from kibitz.kit.tracing import producer_headers

logger = structlog.get_logger("kibitz.outbox")

# 1 s: how long an idle relay waits before looking again (commits wake it at once); the look
# finds rows a crashed process left behind.
_POLL_SECONDS = 1.0
# 20 ms: how long a woken relay waits before relaying (events are consumed a little later).
_WAKE_DELAY_SECONDS = 0.02
_BATCH = 100
# 5 s: the longest pause between relay attempts while the broker is down.
_MAX_BACKOFF_SECONDS = 5.0
# 7 days: sent events stay that long for inspection, then go (the table would grow forever).
KEEP_SENT = timedelta(days=7)
# 1 h between prunes, 1000 rows per transaction.
_PRUNE_EVERY_SECONDS = 3600.0
_PRUNE_BATCH = 1000


# The relays to wake when a session commits (session.info). One listener for every session,
# registered once: a listener per transaction would cost more than the insert it follows.
_WAKE_AFTER_COMMIT = "kibitz_outbox_wake_after_commit"


@sqlalchemy_event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    for wake in session.info.pop(_WAKE_AFTER_COMMIT, ()):
        wake.set()


@sqlalchemy_event.listens_for(Session, "after_soft_rollback")
def _forget_relays(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_WAKE_AFTER_COMMIT, None)


def define_outbox_table(metadata: MetaData) -> Table:
    """The `outbox` table, in the service's own metadata (and its own migrations)."""
    return Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("payload", JSON, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True, index=True),
        Column("attempts", Integer, nullable=False, default=0),
        # The producer's trace context (`traceparent`, `tracestate`); null when tracing is off.
        Column("headers", JSON, nullable=True),
    )


class Outbox:
    """Writes events into a service's outbox table and relays them to the bus."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._wake = asyncio.Event()
        # Built once: building and cache-keying a statement per call costs more than running it.
        self._insert = table.insert().values(
            id=bindparam("id"),
            name=bindparam("name"),
            version=bindparam("version"),
            payload=bindparam("payload"),
            occurred_at=bindparam("occurred_at"),
            attempts=0,
            headers=bindparam("headers"),
        )
        self._pending: Select[Any] = (
            select(table)
            .where(table.c.sent_at.is_(None))
            .order_by(table.c.occurred_at, table.c.id)
            .limit(_BATCH)
        )
        self._pending_locked = self._pending.with_for_update(skip_locked=True)
        self._count_attempt_statement = (
            update(table)
            .where(table.c.id == bindparam("event_id"))
            .values(attempts=table.c.attempts + 1)
        )
        self._mark_sent_statement = (
            update(table)
            .where(table.c.id == bindparam("event_id"))
            .values(sent_at=bindparam("sent_at"))
        )

    async def add(self, session: AsyncSession, event: Event) -> EventEnvelope:
        """Record the event in the caller's transaction; it is relayed after commit, carrying
        the trace context of the moment (a producer span) when tracing is on."""
        envelope = EventEnvelope.wrap(event)
        envelope.headers = producer_headers(envelope.name, message_id=envelope.id)
        await session.execute(
            self._insert,
            {
                "id": envelope.id,
                "name": envelope.name,
                "version": envelope.version,
                "payload": envelope.payload,
                "occurred_at": envelope.occurred_at,
                "headers": envelope.headers or None,
            },
        )
        self._wake_after_commit(session)
        return envelope

    def _wake_after_commit(self, session: AsyncSession) -> None:
        # Woken before the commit, the relay would find nothing and sleep a whole poll period.
        session.info.setdefault(_WAKE_AFTER_COMMIT, set()).add(self._wake)

    async def relay_pending(self, database: Database, bus: EventBus) -> int:
        """Publish unsent rows, oldest first, and mark them sent; returns how many were sent.

        Raises `RelayStalledError` when the broker refused an event (the rest wait their turn).
        On PostgreSQL the rows are locked (`SKIP LOCKED`) so replicas relay disjoint batches.
        """
        if database.engine.dialect.name == "postgresql":
            return await self._relay_locked(database, bus)
        # SQLite: no write lock held while publishing (a broker may be slow); the rows published
        # are marked in one transaction after, the refused one counted in the same.
        async with database.transaction() as session:
            rows = (await session.execute(self._pending)).all()
        published: list[Row[Any]] = []
        for row in rows:
            try:
                await bus.publish(self._envelope(row))
            except Exception as exc:
                async with database.transaction() as session:
                    await self._mark_sent(session, published)
                    await self._count_attempt(session, row)
                raise RelayStalledError(row.name, row.id) from exc
            published.append(row)
        if published:
            async with database.transaction() as session:
                await self._mark_sent(session, published)
        return len(published)

    async def _relay_locked(self, database: Database, bus: EventBus) -> int:
        sent = 0
        failure: RelayStalledError | None = None
        async with database.transaction() as session:
            for row in (await session.execute(self._pending_locked)).all():
                try:
                    await bus.publish(self._envelope(row))
                except Exception as exc:
                    await self._count_attempt(session, row)
                    failure = RelayStalledError(row.name, row.id)
                    failure.__cause__ = exc
                    break
                await self._mark_sent(session, [row])
                sent += 1
        if failure is not None:
            raise failure
        return sent

    @staticmethod
    def _envelope(row: Row[Any]) -> EventEnvelope:
        return EventEnvelope(
            id=row.id,
            name=row.name,
            version=row.version,
            occurred_at=row.occurred_at,
            payload=row.payload,
            headers=row.headers or {},
        )

    async def _count_attempt(self, session: AsyncSession, row: Row[Any]) -> None:
        await session.execute(self._count_attempt_statement, {"event_id": row.id})

    async def _mark_sent(self, session: AsyncSession, rows: list[Row[Any]]) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        await session.execute(
            self._mark_sent_statement, [{"event_id": row.id, "sent_at": now} for row in rows]
        )

    async def prune_sent(self, database: Database, *, sent_before: datetime) -> int:
        """Delete the events sent before `sent_before`; how many went."""
        condition = self.table.c.sent_at < sent_before
        return await delete_in_batches(database, self.table, condition, batch=_PRUNE_BATCH)

    async def pending_count(self, database: Database) -> int:
        """How many events wait to be relayed."""
        async with database.transaction() as session:
            rows = await session.execute(
                select(self.table.c.id).where(self.table.c.sent_at.is_(None))
            )
            return len(rows.all())

    async def run_relay(self, database: Database, bus: EventBus) -> None:
        """Relay forever: woken by new events, polling otherwise, backing off on broker errors."""
        backoff = _POLL_SECONDS
        next_prune = time.monotonic()
        while True:
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + _PRUNE_EVERY_SECONDS
                cutoff = datetime.now(UTC) - KEEP_SENT
                await prune_quietly(self.prune_sent(database, sent_before=cutoff), what="outbox")
            try:
                sent = await self.relay_pending(database, bus)
                backoff = _POLL_SECONDS
            except RelayStalledError as exc:
                logger.warning(
                    "outbox_publish_failed",
                    event_name=exc.event_name,
                    event_id=str(exc.event_id),
                    error=repr(exc.__cause__),
                )
                sent = 0
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            except Exception:
                logger.exception("outbox_relay_failed")
                sent = 0
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            if sent >= _BATCH:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
                # Woken by a commit: let the requests of the moment finish first. Events made
                # meanwhile go in the same batch, and the relay stays off their critical path.
                await asyncio.sleep(_WAKE_DELAY_SECONDS)


class RelayStalledError(Exception):
    """The broker did not take an event; relaying resumes with it on the next try."""

    def __init__(self, event_name: str, event_id: uuid.UUID) -> None:
        super().__init__(f"could not publish {event_name} {event_id}")
        self.event_name = event_name
        self.event_id = event_id
