"""`kibitz agents rotate-key`: every stored provider key re-encrypted under the new key, old
ciphertexts readable throughout, nothing secret printed (issue 15, finding 11)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from typer.testing import CliRunner

from kibitz.cli import app as kibitz
from kibitz.kit.db import Database
from kibitz.kit.encryption import SecretCipher
from kibitz.services.agents.key_rotation import RotationReport, rotate_stored_keys
from kibitz.services.agents.models import Agent
from kibitz.services.agents.module import SCHEMA
from kibitz.services.agents.repository import StoredKeyRepository
from tests.fixtures.stack import one_database

OLD, NEW, STRANGER = (Fernet.generate_key().decode() for _ in range(3))
PLAINTEXTS = [f"sk-user-key-{n}-{uuid.uuid4().hex}" for n in range(5)]


async def _agents_with_keys(url: str) -> Database:
    """The agents schema with five agents whose keys were stored under OLD, one agent without a
    key, and one whose key was stored under a key nobody configured."""
    await SCHEMA.upgrade(url)
    database = Database(url)
    old = SecretCipher.from_setting(OLD)
    async with database.transaction() as session:
        tokens = [old.encrypt(text) for text in PLAINTEXTS]
        tokens += [None, SecretCipher.from_setting(STRANGER).encrypt("sk-lost")]
        for token in tokens:
            session.add(_agent(api_key_encrypted=token))
    return database


def _agent(**values: object) -> Agent:
    return Agent(
        tenant_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        name="Keyed",
        llm_provider="openai",
        model="gpt-4o-mini",
        **values,
    )


async def _stored(database: Database) -> list[str]:
    async with database.transaction() as session:
        query = select(Agent.api_key_encrypted).where(Agent.api_key_encrypted.is_not(None))
        return [str(token) for token in (await session.execute(query.order_by(Agent.id))).scalars()]


def _readable_by(cipher: SecretCipher, tokens: list[str]) -> list[str]:
    texts = []
    for token in tokens:
        try:
            texts.append(cipher.decrypt(token))
        except ValueError:
            continue
    return texts


async def test_rotation_re_encrypts_every_key_and_old_ones_stay_readable_meanwhile(
    database: str, tmp_path: Path
) -> None:
    async with one_database(database, tmp_path, "agents") as url:
        stored = await _agents_with_keys(url)
        both = SecretCipher.from_setting(f"{NEW},{OLD}")  # every replica, during the rotation
        only_new = SecretCipher.from_setting(NEW)
        midway: list[tuple[int, int]] = []

        async def look(report: RotationReport) -> None:
            tokens = await _stored(stored)
            # Between two batches: all five keys still open with the replicas' keys …
            assert sorted(_readable_by(both, tokens)) == sorted(PLAINTEXTS)
            # … some already under the new key, the rest still under the old one.
            midway.append((report.rotated, len(_readable_by(only_new, tokens))))

        try:
            report = await rotate_stored_keys(stored, both, batch=2, after_batch=look)
            tokens = await _stored(stored)
        finally:
            await stored.dispose()
        assert (report.rotated, report.unreadable, report.changed_meanwhile) == (5, 1, 0)
        assert midway[0] == (2, 2) and len(midway) == 4
        assert sorted(_readable_by(only_new, tokens)) == sorted(PLAINTEXTS)
        # The key nobody configured is left exactly as it was.
        assert _readable_by(SecretCipher.from_setting(STRANGER), tokens) == ["sk-lost"]


async def test_a_key_changed_during_the_rotation_is_not_overwritten(tmp_path: Path) -> None:
    async with one_database("sqlite", tmp_path, "agents") as url:
        stored = await _agents_with_keys(url)
        both = SecretCipher.from_setting(f"{NEW},{OLD}")
        try:
            async with stored.transaction() as session:
                agent_id, read = (await StoredKeyRepository(session).page_after(None, limit=1))[0]
            edited = both.encrypt("sk-edited-meanwhile")  # a replica stores the user's new key
            async with stored.transaction() as session:
                agent = await session.get(Agent, agent_id)
                assert agent is not None
                agent.api_key_encrypted = edited
            async with stored.transaction() as session:  # the rotation's write, a moment late
                replaced = await StoredKeyRepository(session).replace(
                    agent_id, old=read, new=both.rotate(read)
                )
            tokens = await _stored(stored)
        finally:
            await stored.dispose()
        assert replaced is False
        assert "sk-edited-meanwhile" in _readable_by(both, tokens)


def test_the_command_rotates_and_prints_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = asyncio.run(_agents_with_keys(f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}"))
    asyncio.run(database.dispose())
    monkeypatch.setenv("KIBITZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KIBITZ_LOG_JSON", "true")
    monkeypatch.setenv("KIBITZ_AGENTS_ENCRYPTION_KEY", f"{NEW},{OLD}")
    monkeypatch.setenv("COLUMNS", "200")  # one line per message, as an operator's terminal
    result = CliRunner().invoke(kibitz, ["agents", "rotate-key"])
    said = result.output
    assert result.exit_code == 1, said  # the stranger's key is reported, not hidden
    assert "re-encrypted 5 stored provider keys" in said
    assert "1 cannot be decrypted with any configured key" in said
    for secret in [NEW, OLD, STRANGER, "sk-lost", *PLAINTEXTS]:
        assert secret not in said

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}")
    try:
        tokens = asyncio.run(_stored(database))
    finally:
        asyncio.run(database.dispose())
    assert sorted(_readable_by(SecretCipher.from_setting(NEW), tokens)) == sorted(PLAINTEXTS)


def test_the_command_without_the_setting_says_how_to_rotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIBITZ_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KIBITZ_AGENTS_ENCRYPTION_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(kibitz, ["agents", "rotate-key"])
    assert result.exit_code == 2
    assert "KIBITZ_AGENTS_ENCRYPTION_KEY is not set" in result.output
