"""The kit's inline SQLite driver against plain aiosqlite, through SQLAlchemy's async engine.

    .venv/bin/python bench/sqlite_driver.py [--statements 3000] [--rounds 3]

Both engines open the same kind of file (WAL, synchronous=NORMAL) and run the same work:
point reads by primary key (one statement each), and small write transactions (BEGIN, one
INSERT, COMMIT), one at a time and then 16 at once. Printed per statement: the process's CPU
time (all threads: aiosqlite's own included) and the wall time, best of the rounds, which
alternate between the two drivers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kibitz.kit.db import create_engine

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String))


def aiosqlite_engine(path: str) -> AsyncEngine:
    """Plain aiosqlite with the pragmas and BEGIN IMMEDIATE the kit's engine uses."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", pool_size=8, max_overflow=8)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: object, _: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: object) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    return engine


async def measure(work: Callable[[], Awaitable[None]], statements: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per statement."""
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    return (
        (time.process_time() - cpu) / statements * 1e6,
        (time.perf_counter() - wall) / statements * 1e6,
    )


async def run(engine: AsyncEngine, statements: int) -> dict[str, tuple[float, float]]:
    """Figures for one engine."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        await connection.execute(insert(items), [{"name": f"n{i}"} for i in range(1000)])

    async def reads() -> None:
        async with engine.connect() as connection:
            for i in range(statements):
                query_i = select(items.c.name).where(items.c.id == i % 1000 + 1)
                (await connection.execute(query_i)).scalar_one()

    async def writes(count: int) -> None:
        for i in range(count):
            async with engine.begin() as connection:
                await connection.execute(insert(items).values(name=f"w{i}"))

    async def concurrent_writes() -> None:
        await asyncio.gather(*(writes(statements // 16) for _ in range(16)))

    figures = {
        "read by key": await measure(reads, statements),
        # Each transaction is three statements: BEGIN, INSERT, COMMIT.
        "write txn, 1 at once": await measure(lambda: writes(statements // 3), statements // 3),
        "write txn, 16 at once": await measure(concurrent_writes, statements // 16 * 16),
    }
    await engine.dispose()
    return figures


async def main(args: argparse.Namespace) -> None:
    """Alternate the drivers, keep each figure's best round."""
    best: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for round_number in range(args.rounds):
            for name, make in (
                ("kit inline", lambda p: create_engine(f"sqlite+aiosqlite:///{p}")),
                ("aiosqlite", aiosqlite_engine),
            ):
                path = str(Path(directory) / f"{name.replace(' ', '-')}-{round_number}.db")
                for label, figure in (await run(make(path), args.statements)).items():
                    kept = best.setdefault(label, {}).get(name)
                    if kept is None or figure[0] < kept[0]:
                        best[label][name] = figure
    title = f"per statement (best of {args.rounds})"
    print(f"{title:32} | kit inline cpu/wall µs | aiosqlite cpu/wall µs")
    for label, by_driver in best.items():
        kit, plain = by_driver["kit inline"], by_driver["aiosqlite"]
        print(f"{label:32} | {kit[0]:9.1f} / {kit[1]:9.1f} | {plain[0]:9.1f} / {plain[1]:9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--statements", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(main(parser.parse_args()))
