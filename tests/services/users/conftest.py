"""Fixtures of the users tests: auth, tenants, agents and users on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fixtures.stack import Stack, start_stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Auth, tenants, agents (preferences name agents) and users on SQLite, shared by a
    module's tests."""
    data_dir = tmp_path_factory.mktemp("users")
    async with start_stack(["auth", "tenants", "agents", "users"], data_dir=data_dir) as running:
        yield running


@pytest.fixture
def users_url(stack: Stack) -> str:
    """Base URL of the users service."""
    return stack.url("users")
