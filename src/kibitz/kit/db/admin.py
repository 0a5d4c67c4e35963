"""Operator tasks on a service's database: create it when missing, and say in one line why a
connection failed (never with the URL's password)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from kibitz.kit.db.availability import error_chain, sqlstate

# PostgreSQL's SQLSTATEs for the failures an operator fixes: no such database, wrong password,
# no such role, and "already exists" (another process created it first).
_NO_SUCH_DATABASE = "3D000"
_CREDENTIALS_REFUSED = "28P01"
_BAD_ROLE = "28000"
_DUPLICATE_DATABASE = "42P04"
# 10 s: a database server that takes longer to answer a connection is not reachable here.
_CONNECT_TIMEOUT_SECONDS = 10


def where(url: str | URL) -> str:
    """`host:port/database` (or the SQLite file) of a URL, safe to print."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


async def create_database(url: str) -> bool:
    """Create the PostgreSQL database the URL names unless it exists; whether it was created.

    Connects to the server's `postgres` maintenance database as the URL's user, who needs the
    CREATEDB privilege. SQLite files need no creating: they appear on first use.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return False
    engine = create_async_engine(
        parsed.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": _CONNECT_TIMEOUT_SECONDS},
    )
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            )
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote(parsed.database)
            try:
                await connection.execute(text(f"CREATE DATABASE {quoted}"))
            except DBAPIError as error:
                if sqlstate(error) == _DUPLICATE_DATABASE:
                    return False
                raise
            return True
    finally:
        await engine.dispose()


def connection_problem(url: str, error: BaseException) -> str | None:
    """One line saying what an operator must fix, when `error` is a failure to reach or open
    the database; None for any other error (which keeps its traceback)."""
    parsed = make_url(url)
    place = where(parsed)
    state = sqlstate(error)
    if state == _NO_SUCH_DATABASE:
        return f"database {place} does not exist"
    if state in (_CREDENTIALS_REFUSED, _BAD_ROLE):
        return f"database {place} refused user {parsed.username!r}: check the URL's credentials"
    for cause in error_chain(error):
        if isinstance(cause, (ConnectionError, TimeoutError)) or (
            isinstance(cause, OSError) and cause.errno is not None
        ):
            reason = getattr(cause, "strerror", None) or type(cause).__name__
            return f"cannot reach the database server of {place}: {reason}"
        if parsed.get_backend_name() == "sqlite" and "unable to open database" in str(cause):
            return f"cannot open the SQLite file {place}: check the data directory"
    return None
