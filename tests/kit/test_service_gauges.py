"""Bookkeeping gauges read from a service's database when /metrics is scraped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import MetaData

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.events import define_inbox_tables, define_outbox_table
from kibitz.kit.jobs import InProcessJobQueue, Job
from kibitz.kit.platform import Platform
from kibitz.kit.service_gauges import ServiceGauges
from tests.fixtures.serving import serving
from tests.fixtures.stack import one_database

metadata = MetaData()
outbox_table = define_outbox_table(metadata)
_, dead_letters_table = define_inbox_tables(metadata)


@pytest.fixture
async def database(tmp_path: Path, database: str) -> AsyncIterator[Database]:
    """A database with an outbox and a dead-letter table, on SQLite and PostgreSQL."""
    async with one_database(database, tmp_path, "gauges") as url:
        db = Database(url)
        async with db.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        try:
            yield db
        finally:
            await db.dispose()


async def _write(database: Database, *, unsent: int, sent: int, parked: int) -> None:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        for index in range(unsent + sent):
            await session.execute(
                outbox_table.insert().values(
                    id=uuid.uuid4(),
                    name="demo.happened",
                    version=1,
                    payload={},
                    occurred_at=now,
                    sent_at=now if index >= unsent else None,
                    attempts=0,
                )
            )
        for _ in range(parked):
            await session.execute(
                dead_letters_table.insert().values(
                    id=uuid.uuid4(),
                    consumer_group="demo",
                    event_id=uuid.uuid4(),
                    name="demo.happened",
                    envelope={},
                    error="boom",
                    attempts=5,
                    parked_at=now,
                )
            )


def _value(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


async def test_a_scrape_reads_the_outbox_backlog_and_the_dead_letters(database: Database) -> None:
    service = f"demo-{uuid.uuid4().hex[:6]}"
    await _write(database, unsent=3, sent=4, parked=2)
    app = create_service_app(
        name=service,
        platform=Platform(),
        routers=[],
        gauges=ServiceGauges(
            service, database, outbox=outbox_table, dead_letters=dead_letters_table
        ),
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        scraped = (await client.get("/metrics")).text
        assert f'kibitz_outbox_backlog{{service="{service}"}} 3.0' in scraped
        assert f'kibitz_dead_letters{{service="{service}"}} 2.0' in scraped
        await _write(database, unsent=1, sent=0, parked=0)
        await client.get("/metrics")
    assert _value("kibitz_outbox_backlog", service) == 4


@pytest.mark.postgres
async def test_the_pool_gauges_count_connections_in_use(tmp_path: Path) -> None:
    service = f"demo-{uuid.uuid4().hex[:6]}"
    async with one_database("postgres", tmp_path, "pool") as url:
        database = Database(url)
        gauges = ServiceGauges(service, database)
        try:
            async with database.engine.connect() as connection:
                await gauges.refresh()
                in_use = _value("kibitz_db_pool_connections_in_use", service)
                capacity = _value("kibitz_db_pool_connections_max", service)
                assert connection is not None
            await gauges.refresh()
            after = _value("kibitz_db_pool_connections_in_use", service)
        finally:
            await database.dispose()
    assert in_use == 1 and after == 0
    assert capacity is not None and capacity >= 1


async def test_a_database_that_does_not_answer_leaves_the_scrape_working(tmp_path: Path) -> None:
    service = f"demo-{uuid.uuid4().hex[:6]}"
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    await ServiceGauges(service, broken, outbox=outbox_table).refresh()
    await broken.dispose()
    assert _value("kibitz_outbox_backlog", service) is None


async def test_a_scrape_reads_the_depth_of_the_job_queue_by_kind(tmp_path: Path) -> None:
    service = f"demo-{uuid.uuid4().hex[:6]}"
    kind = f"demo.{uuid.uuid4().hex[:6]}"
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    queue = InProcessJobQueue()
    for number in range(3):
        await queue.enqueue(Job(id=str(number), kind=kind, payload={}))
    gauges = ServiceGauges(service, database, jobs=queue, job_kinds=(kind,))
    try:
        await gauges.refresh()
    finally:
        await database.dispose()
        await queue.close()
    assert REGISTRY.get_sample_value("kibitz_jobs_depth", {"kind": kind}) == 3
