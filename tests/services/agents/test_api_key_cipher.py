"""Users' own keys: encrypted at rest, never returned, never logged."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kibitz.services.agents.api_key_cipher import KEY_FILE_NAME, ApiKeyCipher
from tests.services.agents.conftest import AgentsApi

SECRET = "sk-user-secret-DO-NOT-LEAK-4242"


def test_a_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    cipher = ApiKeyCipher.from_data_dir(tmp_path)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = cipher.encrypt(SECRET)
    assert SECRET not in token
    assert ApiKeyCipher.from_data_dir(tmp_path).decrypt(token) == SECRET


def test_rotated_keys_still_decrypt_old_tokens() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = ApiKeyCipher.from_setting(old).encrypt(SECRET)
    assert ApiKeyCipher.from_setting(f"{new},{old}").decrypt(token) == SECRET
    with pytest.raises(ValueError):
        ApiKeyCipher.from_setting(new).decrypt(token)


async def test_the_key_is_stored_encrypted_and_never_returned_or_logged(
    agents_sqlite: AgentsApi, capfd: pytest.CaptureFixture[str]
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    created = await api.create(account, llm_provider="openai", model="gpt-4o-mini", api_key=SECRET)
    assert created.status_code == 201 and SECRET not in created.text
    agent = created.json()
    assert "api_key" not in agent and agent["has_api_key"] is True
    for response in (
        await api.http.get(f"{api.url}/agents/{agent['id']}", headers=account.headers),
        await api.http.get(f"{api.url}/agents/my", headers=account.headers),
        await api.http.patch(
            f"{api.url}/agents/{agent['id']}", json={"name": "n"}, headers=account.headers
        ),
        await api.respond(account, agent["id"]),
        await api.respond(account, agent["id"], content="[sim:fault=401]"),
    ):
        assert SECRET not in response.text
    # The provider did receive it.
    assert sim.requests[-2]["headers"]["authorization"] == f"Bearer {SECRET}"
    database = api.stack.data_dir / "agents.db"
    with sqlite3.connect(database) as connection:
        stored = [row[0] for row in connection.execute("SELECT api_key_encrypted FROM agents")]
    assert any(stored) and not any(SECRET in (value or "") for value in stored)
    wal = database.with_name("agents.db-wal")
    raw = database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert SECRET.encode() not in raw
    out, err = capfd.readouterr()
    assert SECRET not in out and SECRET not in err


async def test_a_bad_key_in_a_request_is_not_echoed_in_validation_errors(
    agents_sqlite: AgentsApi,
) -> None:
    account = await agents_sqlite.user()
    response = await agents_sqlite.create(
        account, llm_provider="echo", model="echo", api_key=SECRET
    )
    assert response.status_code == 422 and SECRET not in response.text
    too_long = "sk-" + "z" * 600
    response = await agents_sqlite.create(
        account, llm_provider="openai", model="gpt-4o-mini", api_key=too_long
    )
    assert response.status_code == 422 and too_long not in response.text
