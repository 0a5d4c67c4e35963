"""Gauges of a service's bookkeeping, read from its database when Prometheus scrapes `/metrics`:
events waiting in the outbox, dead letters waiting for an operator, database connections in use,
and jobs waiting or leased on the service's job queue (`kibitz_jobs_depth`, by kind).

Read at scrape time (every 15 s or so), not kept up to date on every write: a count query per
scrape costs nothing next to a counter update on every message's path.
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Gauge
from sqlalchemy import Table, func, select

from kibitz.kit.db import Database
from kibitz.kit.jobs import JobQueue, read_depth_gauge

logger = structlog.get_logger("kibitz.service_gauges")

OUTBOX_BACKLOG = Gauge(
    "kibitz_outbox_backlog", "Events in a service's outbox not yet relayed to the bus", ["service"]
)
DEAD_LETTERS = Gauge(
    "kibitz_dead_letters",
    "Events parked after their last try, waiting for an operator",
    ["service"],
)
DB_POOL_IN_USE = Gauge(
    "kibitz_db_pool_connections_in_use", "Database connections checked out of the pool", ["service"]
)
DB_POOL_CAPACITY = Gauge(
    "kibitz_db_pool_connections_max",
    "Connections the pool may hold at once (its size plus overflow)",
    ["service"],
)
# 2 s: a scrape must answer well inside Prometheus's 10 s default timeout, even with the
# database slow; the gauges then keep their last values.
_READ_TIMEOUT_SECONDS = 2.0


class ServiceGauges:
    """Reads one service's bookkeeping into the gauges (the tables it has, its pool)."""

    def __init__(
        self,
        service: str,
        database: Database,
        *,
        outbox: Table | None = None,
        dead_letters: Table | None = None,
        jobs: JobQueue | None = None,
        job_kinds: tuple[str, ...] = (),
    ) -> None:
        self.service = service
        self.database = database
        self.outbox = outbox
        self.dead_letters = dead_letters
        self.jobs = jobs
        self.job_kinds = job_kinds

    async def refresh(self) -> None:
        """Set the gauges from the database now; a failure is logged and the last values stay."""
        self._read_pool()
        try:
            await asyncio.wait_for(self._read_tables(), _READ_TIMEOUT_SECONDS)
        except Exception as error:
            logger.warning("service_gauges_unavailable", error=type(error).__name__)
        if self.jobs is not None and self.job_kinds:
            try:
                await asyncio.wait_for(
                    read_depth_gauge(self.jobs, list(self.job_kinds)), _READ_TIMEOUT_SECONDS
                )
            except TimeoutError:
                logger.warning("service_gauges_unavailable", error="TimeoutError")

    def _read_pool(self) -> None:
        pool = self.database.engine.pool
        # Only a queue pool (PostgreSQL) has a size; SQLite's connection is not pooled.
        size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", None)
        checked_out = getattr(pool, "checkedout", None)
        if callable(size) and callable(checked_out) and isinstance(overflow, int):
            DB_POOL_IN_USE.labels(self.service).set(checked_out())
            DB_POOL_CAPACITY.labels(self.service).set(size() + max(overflow, 0))

    async def _read_tables(self) -> None:
        readings: list[tuple[Gauge, int]] = []
        async with self.database.transaction() as session:
            if self.outbox is not None:
                pending = select(func.count()).where(self.outbox.c.sent_at.is_(None))
                readings.append((OUTBOX_BACKLOG, await session.scalar(pending) or 0))
            if self.dead_letters is not None:
                parked = select(func.count()).select_from(self.dead_letters)
                readings.append((DEAD_LETTERS, await session.scalar(parked) or 0))
        # Set only once every reading succeeded: a failed read leaves the last values.
        for gauge, value in readings:
            gauge.labels(self.service).set(value)
