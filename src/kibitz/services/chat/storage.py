"""Chat's database handle: on SQLite, writes queue in-process and reads go around them.

Every SQLite transaction of the kit begins IMMEDIATE (it takes the write lock up front). When
several pooled connections race for that lock, the losers sleep in SQLite's busy handler with
back-off, which under load turns a 1 ms transaction into tens of ms; an asyncio lock in front
queues them fairly instead. Reads need no lock at all in WAL mode, so they use a second pool
whose connections run each statement in autocommit (a read transaction of its own) and never
wait for the writer. PostgreSQL needs none of this: both paths are the ordinary engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kibitz.kit.db import Database, create_engine, is_sqlite


class ChatDatabase(Database):
    """A `Database` whose writes queue in-process on SQLite and whose reads never wait."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._write_lock: asyncio.Lock | None = None
        self._readers = self.sessionmaker
        if is_sqlite(url):
            self._write_lock = asyncio.Lock()
            self.read_engine = create_engine(url, read_only=True)
            self._readers = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits when the block ends (never nest these)."""
        if self._write_lock is None:
            async with super().transaction() as session:
                yield session
            return
        async with self._write_lock, super().transaction() as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only (on SQLite: no write lock, no waiting for writers)."""
        async with self._readers() as session:
            yield session

    async def read_session_for_request(self) -> AsyncIterator[AsyncSession]:
        """FastAPI dependency: a read-only session for the request."""
        async with self.reading() as session:
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection of both pools."""
        await super().dispose()
        if self._write_lock is not None:
            await self.read_engine.dispose()
