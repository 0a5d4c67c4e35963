"""Chat's database handle: on SQLite, reads go around the writers.

Every SQLite transaction of the kit begins IMMEDIATE (it takes the write lock up front, and
the kit's driver queues a process's writers in order). Reads need no lock at all in WAL mode,
so they use a second pool whose connections run each statement in autocommit (a read
transaction of its own) and never wait for a writer. PostgreSQL needs none of this: both paths
are the ordinary engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from kibitz.kit.db import ConnectionPool, Database, create_engine, is_sqlite


class ChatDatabase(Database):
    """A `Database` whose reads never wait for a writer on SQLite."""

    def __init__(self, url: str, *, pool: ConnectionPool | None = None) -> None:
        super().__init__(url, pool=pool)
        self._readers = self.sessionmaker
        self.read_engine: AsyncEngine | None = None
        if is_sqlite(url):
            self.read_engine = create_engine(url, read_only=True)
            self._readers = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only (on SQLite: no write lock, no waiting for writers)."""
        async with self._readers() as session:
            yield session

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A plain connection for Core queries only (on SQLite: no write lock either)."""
        async with (self.read_engine or self.engine).connect() as connection:
            yield connection

    async def read_session_for_request(self) -> AsyncIterator[AsyncSession]:
        """FastAPI dependency: a read-only session for the request."""
        async with self.reading() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection of both pools."""
        await super().dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()
