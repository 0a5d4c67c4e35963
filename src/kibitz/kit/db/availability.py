"""A database that cannot be had right now answers 503 with Retry-After, on every route of
every service, never 500.

It shows three ways: the server refuses, cannot be reached or has no connection slot left
(at connect: `database.py` names the driver's bare error), every pooled connection stays busy
past the pool's timeout, or a connection breaks under a statement (the server restarted). Each
passes: the caller is told to come back, and the pool reconnects once the server answers.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import JSONResponse

from kibitz.kit.errors import ServiceUnavailable, handle_unexpected, problem_response

logger = structlog.get_logger("kibitz.db")

# PostgreSQL's SQLSTATEs for a server that cannot take the work now: class 08 (connection
# exceptions), class 53 (insufficient resources: "too many clients" is 53300), and 57P01-03
# (shut down by the administrator, crashed, starting up).
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03"})
# s: a server that was down is usually back, or failed over, within seconds.
_RETRY_DOWN_SECONDS = 5
# s: a pool busy for its whole timeout frees a connection as soon as a request ends.
_RETRY_BUSY_SECONDS = 2


class DatabaseUnavailable(ServiceUnavailable):
    """The service's database cannot be had right now (503, Retry-After)."""

    problem_type = "database-unavailable"


def error_chain(error: BaseException) -> list[BaseException]:
    """The error, what caused it, and what the database driver raised underneath."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return seen


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE somewhere in the error's chain, if any."""
    for cause in error_chain(error):
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _server_cannot_take_work(error: BaseException) -> bool:
    state = sqlstate(error)
    return state is not None and (
        state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
    )


def connection_failure(error: BaseException) -> DatabaseUnavailable | None:
    """The 503 for an error raised while connecting to the database server, when it means the
    server cannot be had now (refused, unreachable, timed out, no slot left); None for any
    other (a wrong password is the operator's to fix, and stays a 500 and a logged trace)."""
    if isinstance(error, OSError) or _server_cannot_take_work(error):
        return DatabaseUnavailable(
            "The service's database cannot be reached right now; try again shortly.",
            retry_after=_RETRY_DOWN_SECONDS,
        )
    return None


def database_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The 503 for an error of SQLAlchemy's that means the database cannot be had now."""
    if isinstance(error, PoolTimeout):
        return DatabaseUnavailable(
            "Every database connection of the service is busy; try again shortly.",
            retry_after=_RETRY_BUSY_SECONDS,
        )
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return connection_failure(ConnectionError())
    return connection_failure(error) if _server_cannot_take_work(error) else None


async def _handle_database_error(request: Request, error: Exception) -> JSONResponse:
    problem = database_unavailable(error)
    if problem is None:
        return await handle_unexpected(request, error)
    logger.warning("database_unavailable", path=request.url.path, error=type(error).__name__)
    return problem_response(problem)


def install_database_problems(app: FastAPI) -> None:
    """Make `app` answer 503 (Retry-After) when its database cannot be had, 500 otherwise."""
    app.add_exception_handler(SQLAlchemyError, _handle_database_error)
