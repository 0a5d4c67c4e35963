"""Async SQLAlchemy 2: an engine per service database; the request boundary commits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import ColumnElement, Table, delete, event, select, text, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from kibitz.kit.db.availability import connection_failure
from kibitz.kit.db.sqlite_driver import DRIVER_NAME as SQLITE_DRIVER
from kibitz.kit.db.sqlite_driver import inline_connector

logger = structlog.get_logger("kibitz.db")
# s: a pooled PostgreSQL connection unused this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionPool:
    """How many PostgreSQL connections one process of a service keeps open (`size`), may open
    beyond them under load (`max_overflow`), and how long a request waits for one.

    Small by default: every replica of every service draws on the server's max_connections
    (services x replicas x (size + max_overflow) must stay below it; the README does the sum).
    """

    size: int = 5
    max_overflow: int = 5
    # s: past this a request answers 503 (Retry-After) instead of queueing for ever.
    timeout_seconds: float = 10.0
    # s: asyncpg waits 60 s for an unreachable server by default.
    connect_timeout_seconds: float = 5.0


def is_sqlite(url: str) -> bool:
    """Whether the URL names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: AsyncEngine, *, read_only: bool) -> None:
    # WAL lets readers run beside the writer; BEGIN IMMEDIATE takes the write lock up front
    # so two transactions never deadlock upgrading read locks (the driver makes them queue).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    if not read_only:
        # A read-only engine's statements each run in autocommit: a read of their own.
        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.connection.driver_connection.begin_immediate()


def create_engine(
    url: str, *, echo: bool = False, read_only: bool = False, pool: ConnectionPool | None = None
) -> AsyncEngine:
    """An async engine with the right pool, driver and pragmas for the URL's backend.

    SQLite runs on the event loop's thread (`sqlite_driver`); `read_only` (SQLite only) makes
    an engine for queries that never take the write lock, so they never wait for a writer.
    `pool` sizes a PostgreSQL engine's connection pool (SQLite's connections are files, not
    server slots: its pool stays as it is).
    """
    if is_sqlite(url):
        path = make_url(url).database or ":memory:"
        engine = create_async_engine(
            make_url(url).set(drivername=SQLITE_DRIVER),
            echo=echo,
            pool_size=8,
            max_overflow=8,
            async_creator=inline_connector(path),
        )
        _configure_sqlite(engine, read_only=read_only)
        return engine
    pool = pool or ConnectionPool()
    parsed = make_url(url)
    engine = create_async_engine(
        parsed,
        echo=echo,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout_seconds,
        connect_args=(
            {"timeout": pool.connect_timeout_seconds}
            if parsed.get_driver_name() == "asyncpg"
            else {}
        ),
    )
    _report_connection_failures(engine)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    # A pooled connection is pinged before use only once it sat unused a while: one cut by a
    # server restart, an idle timeout or an administrator is replaced before a statement fails
    # on it, while one handed back a moment ago (every connection of a busy service) costs no
    # round trip. `pool_pre_ping` pinged on every checkout: a round trip per transaction, 7% of
    # a chat replica's CPU and 14% of tenants' (bench/chat_stream.py --distributed, c=16).
    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # unusable: the pool connects anew and retries
            raise DisconnectionError() from error


def _report_connection_failures(engine: AsyncEngine) -> None:
    # A server that refuses, is unreachable or has no slot left raises from the driver's
    # connect, untranslated (a bare ConnectionRefusedError): named here, where it is known to
    # be the database's, so that every route answers 503 (see `availability.py`).
    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            failure = connection_failure(error)
            if failure is None:
                raise
            raise failure from error


class Database:
    """A service's database: its engine and session factory."""

    def __init__(self, url: str, *, pool: ConnectionPool | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, pool=pool)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends and rolls back if it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def session_for_request(self) -> AsyncIterator[AsyncSession]:
        """FastAPI dependency: the request boundary commits; services only flush."""
        async with self.transaction() as session:
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


async def delete_in_batches(
    database: Database, table: Table, condition: ColumnElement[bool], *, batch: int
) -> int:
    """Delete the rows matching `condition`, `batch` rows per transaction (a backlog never
    holds the write lock for long); how many were deleted."""
    key = tuple_(*table.primary_key.columns)
    chosen = select(*table.primary_key.columns).where(condition).limit(batch)
    statement = delete(table).where(key.in_(chosen))
    deleted = 0
    while True:
        async with database.transaction() as session:
            result = await session.execute(statement)
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < batch:
            return deleted


async def prune_quietly(prune: Awaitable[int], *, what: str) -> None:
    """Await a background prune: how many rows it deleted is logged, and so is a failure
    (never raised: the next prune tries again)."""
    try:
        deleted = await prune
    except Exception:
        logger.exception("prune_failed", what=what)
        return
    if deleted:
        logger.info("pruned", what=what, rows=deleted)


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session on the app's database (`app.state.database`)."""
    database: Database = request.app.state.database
    async with database.transaction() as session:
        yield session


# scope="function": the commit happens before the answer leaves, so a client reads its writes.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]
