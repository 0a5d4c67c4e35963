"""Databases: the engine and session per service (`database`), the Alembic helper
(`migrations`, imported by path: it pulls in Alembic) and the inline SQLite driver
(`sqlite_driver`)."""

from __future__ import annotations

from kibitz.kit.db.database import (
    ConnectionPool,
    Database,
    SessionDep,
    create_engine,
    delete_in_batches,
    is_sqlite,
    prune_quietly,
    request_session,
)

__all__ = [
    "ConnectionPool",
    "Database",
    "SessionDep",
    "create_engine",
    "delete_in_batches",
    "is_sqlite",
    "prune_quietly",
    "request_session",
]
