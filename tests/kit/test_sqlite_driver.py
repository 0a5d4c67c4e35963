from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from kibitz.kit.db import Database, create_engine
from kibitz.kit.db.sqlite_driver import InlineConnection, inline_connector

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(50), nullable=False),
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def test_statements_run_on_the_event_loop_thread_without_helper_threads(
    database: Database,
) -> None:
    threads_before = threading.active_count()
    async with database.transaction() as session:
        result = await session.execute(notes.insert().values(text="hello"))
        assert result.rowcount == 1
    async with database.transaction() as session:
        texts = (await session.execute(select(notes.c.text))).scalars().all()
    assert texts == ["hello"]
    assert threading.active_count() == threads_before  # aiosqlite would start one per connection


async def test_a_locked_database_is_waited_for_without_stopping_the_event_loop(
    database: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "notes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())

    async def write() -> None:
        async with database.transaction() as session:
            await session.execute(notes.insert().values(text="after the lock"))

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    assert not writer.done()
    assert ticks >= 10  # the loop kept running while the write waited
    other.execute("COMMIT")
    await asyncio.wait_for(writer, 5)
    ticker.cancel()
    other.close()
    async with database.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(notes))).scalar_one() == 1


async def test_a_lock_held_past_the_busy_timeout_fails_the_statement(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER)").connection.close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    connection = await inline_connector(str(path), busy_timeout_seconds=0.1)()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("BEGIN IMMEDIATE")
    finally:
        await connection.close()
        other.close()


async def test_a_read_only_engine_reads_beside_a_writer_and_refuses_writes(
    database: Database, tmp_path: Path
) -> None:
    readers = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}", read_only=True)
    try:
        async with database.transaction() as session:
            await session.execute(notes.insert().values(text="committed"))
        async with database.transaction() as writing:  # holds the write lock meanwhile
            await writing.execute(notes.insert().values(text="not yet"))
            async with readers.connect() as connection:
                rows = (await connection.execute(select(notes.c.text))).scalars().all()
            assert rows == ["committed"]
        async with readers.connect() as connection:
            with pytest.raises(Exception, match="readonly"):
                await connection.execute(notes.insert().values(text="nope"))
    finally:
        await readers.dispose()


async def test_sqlite_urls_get_the_kits_own_dialect_over_a_connection_it_owns(
    database: Database,
) -> None:
    assert database.engine.dialect.driver == "kibitz_inline"
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        inline = raw.driver_connection
        assert isinstance(inline, InlineConnection)
        # Nothing of aiosqlite's internals is imitated any more.
        for name in ("_conn", "_tx", "__await__"):
            assert not hasattr(inline, name)
        assert inline.isolation_level is None  # autocommit at the driver, set through it
