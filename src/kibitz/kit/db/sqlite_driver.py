"""SQLite on the event loop's own thread, as a SQLAlchemy async dialect of its own
(`sqlite+kibitz_inline`; `kit.db.create_engine` picks it for every SQLite URL).

aiosqlite runs every call (cursor, execute, fetch, close) on a thread of its own: four thread
hand-offs per statement, each waiting for the GIL behind a busy event loop. A SQLite statement
on an indexed table takes microseconds, so the hand-offs cost far more than the work (measured
again for issue 16, `bench/sqlite_driver.py`: see the README). This driver calls `sqlite3`
directly and owns its connection; the dialect reuses SQLAlchemy's aiosqlite dialect for SQL
and cursors, and adapts this connection instead of aiosqlite's.

Calls never block on a lock. Write transactions of one process queue for a database on an
asyncio lock (in order, no polling); against another process's writer the connection runs with
`busy_timeout=0`, and a statement that finds the database locked is retried after an asyncio
sleep, with back-off, until `busy_timeout_seconds` — what SQLite's busy handler would do,
without stopping the event loop while it waits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_module
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import await_

from kibitz.kit.private_files import private_sqlite_file

DRIVER_NAME = "sqlite+kibitz_inline"

# Back-off between attempts on a locked database (s): short first, a few ms at most.
_FIRST_RETRY_SECONDS = 0.0005
_MAX_RETRY_SECONDS = 0.01


# Per event loop, per database file: the lock its write transactions queue on.
_WRITE_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _write_gate(path: str) -> asyncio.Lock:
    gates = _WRITE_GATES.setdefault(asyncio.get_running_loop(), {})
    return gates.setdefault(path, asyncio.Lock())


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class _LockWait:
    """Retries a call while the database is locked, sleeping on the event loop between tries."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds

    async def run(self, call: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self.timeout_seconds
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                return call()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)


class InlineCursor:
    """An aiosqlite-style cursor over a `sqlite3` cursor."""

    def __init__(self, cursor: sqlite3.Cursor, owner: InlineConnection) -> None:
        self._cursor = cursor
        self._owner = owner
        self._lock_wait = owner.lock_wait

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        """Run one statement (waiting without blocking while the database is locked)."""
        await self._owner.begin_if_asked()
        await self._lock_wait.run(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        """Run one statement for each parameter set."""
        rows = list(parameters)
        await self._owner.begin_if_asked()
        await self._lock_wait.run(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """An aiosqlite-style connection whose calls run at once on the calling thread."""

    def __init__(
        self, connection: sqlite3.Connection, *, path: str, busy_timeout_seconds: float
    ) -> None:
        self._sqlite: sqlite3.Connection | None = connection
        self.lock_wait = _LockWait(busy_timeout_seconds)
        self._path = path
        self._begin_asked = False
        self._gate: asyncio.Lock | None = None

    def begin_immediate(self) -> None:
        """Open a write transaction (BEGIN IMMEDIATE) with the next statement: cheaper than a
        statement of its own through SQLAlchemy, and it waits for the lock like the others."""
        self._begin_asked = True

    async def begin_if_asked(self) -> None:
        if not self._begin_asked:
            return
        self._begin_asked = False
        connection = self._open()
        gate = _write_gate(self._path)
        try:
            async with asyncio.timeout(self.lock_wait.timeout_seconds):
                await gate.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._gate = gate
        try:
            await self.lock_wait.run(lambda: connection.execute("BEGIN IMMEDIATE"))
        except BaseException:
            self._open_gate()
            raise

    def _open_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    @property
    def is_open(self) -> bool:
        """Whether the connection has not been closed."""
        return self._sqlite is not None

    def _open(self) -> sqlite3.Connection:
        if self._sqlite is None:
            raise ValueError("no active connection")
        return self._sqlite

    def cursor(self) -> InlineCursor:
        """A new cursor (used as `await connection.cursor()` or `async with`)."""
        return InlineCursor(self._open().cursor(), self)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        """Run one statement on a new cursor."""
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._begin_asked = False
        try:
            await self.lock_wait.run(self._open().commit)
        finally:
            self._open_gate()

    async def rollback(self) -> None:
        self._begin_asked = False
        try:
            self._open().rollback()
        finally:
            self._open_gate()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        self._open_gate()
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def set_isolation_level(self, value: str | None) -> None:
        """Set `sqlite3`'s isolation level (None: autocommit at the driver)."""
        self._open().isolation_level = value  # type: ignore[assignment]

    @property
    def in_transaction(self) -> bool:
        return self._open().in_transaction


def inline_connector(
    path: str, *, busy_timeout_seconds: float = 30.0
) -> Callable[[], Awaitable[InlineConnection]]:
    """`async_creator` for `create_async_engine`: connections to the SQLite file at `path`."""

    prepared = False

    async def connect() -> InlineConnection:
        nonlocal prepared
        if not prepared:  # once per engine: 0600 before sqlite3 creates it with 0644
            private_sqlite_file(path)
            prepared = True
        # Autocommit at the driver: SQLAlchemy's "begin" event issues BEGIN IMMEDIATE itself.
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=0")
        return InlineConnection(connection, path=path, busy_timeout_seconds=busy_timeout_seconds)

    return connect


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapter of an async SQLite connection, for an InlineConnection."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._inline.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        try:
            self._inline.set_isolation_level(value)
        except Exception as error:
            self._handle_exception(error)

    @property
    def _inline(self) -> InlineConnection:
        return cast(InlineConnection, self._connection)

    # The generic adapter's commit and rollback, skipping aiosqlite's check of its own internals.
    def rollback(self) -> None:
        if self._inline.is_open:
            AsyncAdapt_dbapi_connection.rollback(self)

    def commit(self) -> None:
        if self._inline.is_open:
            AsyncAdapt_dbapi_connection.commit(self)


class _InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DB-API module the dialect sees: `sqlite3`'s names, InlineConnection's connect."""

    def __init__(self) -> None:
        AsyncAdapt_dbapi_module.__init__(self, sqlite3, dbapi_module=sqlite3)
        self.aiosqlite = sqlite3
        self.sqlite = sqlite3
        self.paramstyle = "qmark"
        self.has_stop = True  # InlineConnection.stop closes at once
        self._init_dbapi_attributes()

    def connect(self, *arg: Any, **kw: Any) -> _AdaptedConnection:
        """A connection through the engine's `async_creator` (InlineConnector)."""
        creator = kw.pop("async_creator_fn", None)
        if creator is None:
            raise ValueError("the inline SQLite dialect connects through async_creator")
        return _AdaptedConnection(self, await_(creator(*arg, **kw)))


class InlineSQLiteDialect(SQLiteDialect_aiosqlite):
    """`sqlite+kibitz_inline`: SQLAlchemy's aiosqlite dialect over InlineConnection."""

    driver = "kibitz_inline"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _InlineDBAPI:
        return _InlineDBAPI()

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        """The version of the SQLite library (there is no driver package to name)."""
        return tuple(int(part) for part in sqlite3.sqlite_version.split("."))


registry.register("sqlite.kibitz_inline", __name__, "InlineSQLiteDialect")
