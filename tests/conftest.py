"""Shared fixtures: see tests/fixtures/stack.py for the real-stack helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from tests.fixtures.jetstream_cleanup import delete_streams_made_since, streams_now
from tests.fixtures.stack import Stack, start_stack

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# Tests leave logging unconfigured, and structlog's default console renderer draws tracebacks
# with rich: seconds of CPU for each logged exception. Plain tracebacks say the same.
structlog.configure(
    processors=[
        *structlog.get_config()["processors"][:-1],
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)


# JetStream streams this run made go when it ends (see tests/fixtures/jetstream_cleanup.py).
# Read and deleted by the run's controlling process only: with pytest-xdist, a worker that ends
# early would otherwise delete streams its siblings are still using.
_STREAMS_BEFORE = pytest.StashKey[set[str] | None]()


def _controls_the_run(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controls_the_run(session.config):
        session.config.stash[_STREAMS_BEFORE] = streams_now()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _controls_the_run(session.config):
        delete_streams_made_since(session.config.stash.get(_STREAMS_BEFORE, None))


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs on SQLite and on the machine's PostgreSQL."""
    return str(request.param)


@pytest.fixture
async def auth_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The auth service alone, on SQLite."""
    async with start_stack(["auth"], data_dir=tmp_path) as stack:
        yield stack
