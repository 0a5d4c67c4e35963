"""Fixtures of the chat tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.services.chat.world import World, chat_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """auth, tenants, users, agents and chat on SQLite; requests go straight to chat."""
    async with chat_world(tmp_path) as running:
        yield running


@pytest.fixture
async def world_on(tmp_path: Path, database: str) -> AsyncIterator[World]:
    """The same, on SQLite and on PostgreSQL."""
    async with chat_world(tmp_path, database=database) as running:
        yield running
