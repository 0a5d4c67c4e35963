"""A fresh install: echo only, a generated encryption key, migrations with their own history."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.services.agents.api_key_cipher import KEY_FILE_NAME
from kibitz.services.agents.module import migrate
from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import start_stack
from tests.services.agents.conftest import AgentsApi, assert_problem


@pytest.fixture(scope="module")
async def fresh(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Auth and agents with no provider keys and no encryption key configured."""
    data_dir = tmp_path_factory.mktemp("fresh")
    async with start_stack(["auth", "agents"], data_dir=data_dir) as stack:
        yield AgentsApi(stack=stack, sim=sim)


async def test_a_fresh_install_offers_only_echo(fresh: AgentsApi) -> None:
    account = await fresh.user()
    catalogue = (
        await fresh.http.get(f"{fresh.url}/agents/providers", headers=account.headers)
    ).json()
    configured = [item["id"] for item in catalogue["items"] if item["configured"]]
    assert configured == ["echo"]
    problem = assert_problem(
        await fresh.create(account, llm_provider="openai", model="gpt-4o-mini"), 422
    )
    assert problem["errors"][0]["field"] == "api_key"
    agent = await fresh.create_ok(account)
    reply = await fresh.respond(account, agent["id"], content="works offline")
    assert reply.status_code == 200 and reply.json()["content"] == "works offline"


async def test_a_fresh_install_generates_a_private_encryption_key(fresh: AgentsApi) -> None:
    key_file = fresh.stack.data_dir / KEY_FILE_NAME
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    account = await fresh.user()
    agent = await fresh.create_ok(
        account, llm_provider="openai", model="gpt-4o-mini", api_key="sk-own-key-123"
    )
    assert agent["has_api_key"] is True


async def test_migrations_create_the_table_with_their_own_version_table(tmp_path: Path) -> None:
    await migrate(Platform(settings=PlatformSettings(data_dir=tmp_path)))
    with sqlite3.connect(tmp_path / "agents.db") as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        columns = {row[1] for row in connection.execute("PRAGMA table_info(agents)")}
    assert {"agents", "agents_alembic_version"} <= tables
    assert {
        "id",
        "tenant_id",
        "user_id",
        "name",
        "llm_provider",
        "model",
        "instructions",
        "temperature",
        "base_url",
        "api_key_encrypted",
        "knowledge_collection_ids",
        "created_at",
        "updated_at",
    } == columns
