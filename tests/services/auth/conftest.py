"""Fixtures of the auth tests: one auth service per test module and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import DATABASES
from tests.fixtures.stack import Stack, start_stack


@pytest.fixture(scope="module", params=DATABASES)
async def auth(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The auth service alone, shared by a module's tests, on SQLite and on PostgreSQL."""
    data_dir = tmp_path_factory.mktemp("auth")
    async with start_stack(["auth"], data_dir=data_dir, database=str(request.param)) as stack:
        yield stack


@pytest.fixture
def auth_url(auth: Stack) -> str:
    """Base URL of the auth service."""
    return auth.url("auth")
