from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update

from kibitz.kit.db import Database, is_sqlite
from tests.fixtures.stack import postgres_databases

metadata = MetaData()
counters = Table(
    "counters",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("value", Integer, nullable=False),
)


async def _concurrent_read_modify_writes(database: Database, workers: int) -> int:
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    async with database.transaction() as session:
        await session.execute(counters.insert().values(name="n", value=0))

    async def bump() -> None:
        async with database.transaction() as session:
            value = (
                await session.execute(
                    select(counters.c.value).where(counters.c.name == "n").with_for_update()
                )
            ).scalar_one()
            await asyncio.sleep(0)
            await session.execute(
                update(counters).where(counters.c.name == "n").values(value=value + 1)
            )

    await asyncio.gather(*(bump() for _ in range(workers)))
    async with database.transaction() as session:
        return int((await session.execute(select(counters.c.value))).scalar_one())


async def test_sqlite_transactions_never_lose_an_update(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        assert await _concurrent_read_modify_writes(database, 30) == 30
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_postgres_row_locks_never_lose_an_update() -> None:
    async with postgres_databases(["db"]) as urls:
        database = Database(urls["db"])
        try:
            assert await _concurrent_read_modify_writes(database, 30) == 30
        finally:
            await database.dispose()


async def test_a_failed_block_rolls_back(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        with pytest.raises(RuntimeError):
            async with database.transaction() as session:
                await session.execute(counters.insert().values(name="gone", value=1))
                raise RuntimeError("boom")
        async with database.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM counters"))).scalar_one() == 0
        await database.ping()
    finally:
        await database.dispose()


def test_backend_detection() -> None:
    assert is_sqlite("sqlite+aiosqlite:///x.db")
    assert not is_sqlite("postgresql+asyncpg://u@h/db")
