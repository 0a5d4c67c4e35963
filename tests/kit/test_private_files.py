"""Data and key files are created 0600 and directories 0700 (issue 15, finding 5)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet

from kibitz.kit.db import Database
from kibitz.kit.encryption import SecretCipher
from kibitz.kit.private_files import private_sqlite_file
from kibitz.services.knowledge.retrieval.vectors import VectorStore
from tests.fixtures.stack import start_stack


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_signing_key_and_every_data_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with start_stack(["auth", "agents", "gateway"], data_dir=data) as stack:
        await stack.register()  # writes: the WAL and shared-memory files exist now
        files = sorted(path for path in data.iterdir() if path.is_file())
        names = {path.name for path in files}
        assert {"auth.db", "auth.db-wal", "auth.db-shm", "auth-encryption.key"} <= names
        assert {"agents.db", "agents-encryption.key"} <= names
        assert {path.name: mode(path) for path in files} == dict.fromkeys(names, 0o600)
        assert mode(data) == 0o700


async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    database = data / "old.db"
    key_file = data / "old.key"
    for path in (database, Path(f"{database}-wal")):
        path.touch()
        os.chmod(path, 0o644)
    key_file.write_bytes(Fernet.generate_key())
    os.chmod(key_file, 0o644)
    private_sqlite_file(str(database))
    SecretCipher.from_key_file(key_file)
    assert mode(database) == mode(Path(f"{database}-wal")) == mode(key_file) == 0o600
    assert mode(data) == 0o700


async def test_a_new_sqlite_database_is_private_from_its_first_byte(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'service.db'}")
    try:
        await db.ping()
    finally:
        await db.dispose()
    assert mode(tmp_path / "fresh" / "service.db") == 0o600
    assert mode(tmp_path / "fresh") == 0o700


async def test_qdrant_s_embedded_directory_is_private(tmp_path: Path) -> None:
    store = VectorStore.embedded_under(tmp_path / "qdrant")
    await store.client.close()
    assert mode(tmp_path / "qdrant") == 0o700
