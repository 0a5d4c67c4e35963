"""The transactional outbox: written with the change, relayed after commit, never lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from kibitz.kit.db import Database, delete_in_batches
from kibitz.kit.events import (
    Event,
    EventEnvelope,
    InProcessBus,
    Outbox,
    RelayStalledError,
    define_outbox_table,
)
from kibitz.kit.events.outbox import KEEP_SENT
from tests.fixtures.stack import postgres_databases

metadata = MetaData()
outbox_table = define_outbox_table(metadata)
changes = Table("changes", metadata, Column("id", Integer, primary_key=True))


class Changed(Event):
    name: ClassVar[str] = "tests.changed"
    number: int


class RecordingBus(InProcessBus):
    """An in-process bus that records what it was handed and can be made to refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[EventEnvelope] = []
        self.down = False
        self.refuse_after: int | None = None  # take this many, then refuse

    async def publish(self, envelope: EventEnvelope) -> None:
        full = self.refuse_after is not None and len(self.published) >= self.refuse_after
        if self.down or full:
            raise ConnectionError("broker down")
        await asyncio.sleep(0)
        self.published.append(envelope)


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    kind = getattr(request, "param", "sqlite")
    if kind == "postgres":
        async with postgres_databases(["outbox"]) as urls:
            db = Database(urls["outbox"])
            async with db.engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
            yield db
            await db.dispose()
        return
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db
    await db.dispose()


BOTH = pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def write(db: Database, outbox: Outbox, number: int) -> None:
    async with db.transaction() as session:
        await session.execute(changes.insert().values(id=number))
        await outbox.add(session, Changed(number=number))


@BOTH
async def test_events_are_relayed_in_order_and_marked_sent(database: Database) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    for number in range(5):
        await write(database, outbox, number)
    assert await outbox.pending_count(database) == 5
    assert await outbox.relay_pending(database, bus) == 5
    assert [e.payload["number"] for e in bus.published] == [0, 1, 2, 3, 4]
    assert all(e.name == "tests.changed" for e in bus.published)
    assert await outbox.pending_count(database) == 0
    assert await outbox.relay_pending(database, bus) == 0


@BOTH
async def test_an_event_whose_transaction_rolls_back_is_never_sent(database: Database) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await outbox.add(session, Changed(number=1))
            raise RuntimeError("the change failed")
    assert await outbox.relay_pending(database, bus) == 0
    assert bus.published == []


@BOTH
async def test_a_broker_refusal_keeps_the_event_for_the_next_try(database: Database) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    await write(database, outbox, 1)
    await write(database, outbox, 2)
    bus.down = True
    with pytest.raises(RelayStalledError):
        await outbox.relay_pending(database, bus)
    assert await outbox.pending_count(database) == 2
    bus.down = False
    assert await outbox.relay_pending(database, bus) == 2
    assert [e.payload["number"] for e in bus.published] == [1, 2]


@BOTH
async def test_a_refusal_mid_batch_keeps_what_was_published_marked_and_the_rest_pending(
    database: Database,
) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    for number in (1, 2, 3):
        await write(database, outbox, number)
    bus.refuse_after = 1
    with pytest.raises(RelayStalledError):
        await outbox.relay_pending(database, bus)
    assert await outbox.pending_count(database) == 2
    bus.refuse_after = None
    assert await outbox.relay_pending(database, bus) == 2
    assert [e.payload["number"] for e in bus.published] == [1, 2, 3]  # none twice


@BOTH
async def test_the_relay_loop_delivers_what_was_written_during_an_outage(
    database: Database,
) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    bus.down = True
    relay = asyncio.create_task(outbox.run_relay(database, bus))
    try:
        for number in range(10):
            await write(database, outbox, number)
        await asyncio.sleep(0.3)
        bus.down = False
        for _ in range(400):
            if len(bus.published) >= 10:
                break
            await asyncio.sleep(0.05)
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    assert sorted(e.payload["number"] for e in bus.published) == list(range(10))


async def test_a_commit_wakes_the_relay_at_once_and_a_rollback_does_not(
    database: Database,
) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    relay = asyncio.create_task(outbox.run_relay(database, bus))
    try:
        await asyncio.sleep(0.1)  # the relay's first look found nothing: it waits up to 1 s
        with pytest.raises(RuntimeError):
            async with database.transaction() as session:
                await outbox.add(session, Changed(number=1))
                raise RuntimeError("rolled back")
        assert not outbox._wake.is_set()
        await write(database, outbox, 2)
        # Woken by the commit, it relays within its 20 ms grace, long before its next poll.
        await asyncio.sleep(0.3)
        assert [event.payload["number"] for event in bus.published] == [2]
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)


@pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_two_relays_on_postgresql_publish_each_event_once(database: Database) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    for number in range(60):
        await write(database, outbox, number)
    await asyncio.gather(*(outbox.relay_pending(database, bus) for _ in range(4)))
    while await outbox.pending_count(database):
        await outbox.relay_pending(database, bus)
    counts = Counter(e.payload["number"] for e in bus.published)
    assert sorted(counts) == list(range(60))
    assert set(counts.values()) == {1}


@BOTH
async def test_events_sent_before_the_cutoff_are_pruned_and_the_rest_kept(
    database: Database,
) -> None:
    outbox, bus = Outbox(outbox_table), RecordingBus()
    for number in range(5):
        await write(database, outbox, number)
    await outbox.relay_pending(database, bus)
    await write(database, outbox, 5)  # not sent yet: never pruned
    async with database.transaction() as session:
        await session.execute(
            outbox_table.update()
            .where(outbox_table.c.payload["number"].as_integer() < 3)
            .values(sent_at=datetime.now(UTC) - KEEP_SENT - timedelta(minutes=1))
        )
    pruned = await outbox.prune_sent(database, sent_before=datetime.now(UTC) - KEEP_SENT)
    assert pruned == 3
    async with database.transaction() as session:
        left = (await session.execute(select(outbox_table.c.payload))).scalars().all()
    assert sorted(payload["number"] for payload in left) == [3, 4, 5]
    assert await outbox.pending_count(database) == 1


async def test_pruning_deletes_a_backlog_in_batches(database: Database) -> None:
    rows = [{"id": number} for number in range(2500)]
    async with database.transaction() as session:
        await session.execute(changes.insert(), rows)
    deleted = await delete_in_batches(database, changes, changes.c.id < 2300, batch=1000)
    assert deleted == 2300
    async with database.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(changes))).scalar() == 200
