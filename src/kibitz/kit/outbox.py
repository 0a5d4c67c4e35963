"""Transactional outbox: events are written in the transaction that causes them, then relayed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Uuid, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.events import Event, EventBus, EventEnvelope

logger = structlog.get_logger("kibitz.outbox")

# 0.2 s: how long a relay waits for new rows when it was not woken by a commit.
_POLL_SECONDS = 0.2
_BATCH = 100


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
    )


class Outbox:
    """Writes events into a service's outbox table and relays them to the bus."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._wake = asyncio.Event()

    async def add(self, session: AsyncSession, event: Event) -> EventEnvelope:
        """Record the event in the caller's transaction; it is relayed after commit."""
        envelope = EventEnvelope.wrap(event)
        await session.execute(
            self.table.insert().values(
                id=envelope.id,
                name=envelope.name,
                version=envelope.version,
                payload=envelope.payload,
                occurred_at=envelope.occurred_at,
                attempts=0,
            )
        )
        self._wake.set()
        return envelope

    async def relay_pending(self, database: Database, bus: EventBus) -> int:
        """Publish unsent rows, oldest first, and mark them sent; returns how many were sent."""
        async with database.transaction() as session:
            rows = (
                await session.execute(
                    select(self.table)
                    .where(self.table.c.sent_at.is_(None))
                    .order_by(self.table.c.occurred_at, self.table.c.id)
                    .limit(_BATCH)
                )
            ).all()
        sent = 0
        for row in rows:
            envelope = EventEnvelope(
                id=row.id,
                name=row.name,
                version=row.version,
                occurred_at=row.occurred_at,
                payload=row.payload,
            )
            try:
                await bus.publish(envelope)
            except Exception:
                logger.warning("outbox_publish_failed", event=row.name, event_id=str(row.id))
                async with database.transaction() as session:
                    await session.execute(
                        update(self.table)
                        .where(self.table.c.id == row.id)
                        .values(attempts=self.table.c.attempts + 1)
                    )
                break
            async with database.transaction() as session:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.id == row.id)
                    .values(sent_at=datetime.now(UTC))
                )
            sent += 1
        return sent

    async def run_relay(self, database: Database, bus: EventBus) -> None:
        """Relay forever: woken by new events, polling otherwise, backing off on broker errors."""
        backoff = _POLL_SECONDS
        while True:
            try:
                sent = await self.relay_pending(database, bus)
                backoff = _POLL_SECONDS
            except Exception:
                logger.exception("outbox_relay_failed")
                sent = 0
                backoff = min(backoff * 2, 5.0)
            if sent >= _BATCH:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except TimeoutError:
                pass
