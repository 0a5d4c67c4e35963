"""The `kibitz` command as an operator meets it: one line for each thing that is wrong, never a
traceback, and the operator's tasks (migrate, doctor, rotate-signing-key, replay-dead-letters)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from kibitz.kit.settings import PlatformSettings
from tests.fixtures.processes import KIBITZ, free_port
from tests.fixtures.stack import POSTGRES_ADMIN_DSN, postgres_databases


def _kibitz(*arguments: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")}
    return subprocess.run(
        [KIBITZ, *arguments],
        env={**clean, "KIBITZ_LOG_LEVEL": "WARNING", "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _said(finished: subprocess.CompletedProcess[str]) -> str:
    return finished.stdout + finished.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["up", "--host", "127.0.0.1"],
        ["serve", "users", "--host", "127.0.0.1"],
    ],
)
def test_a_busy_port_is_one_line_naming_it(
    command: list[str], busy_port: int, tmp_path: Path
) -> None:
    finished = _kibitz(
        *command,
        "--port",
        str(busy_port),
        env={"KIBITZ_DATA_DIR": str(tmp_path), "KIBITZ_INTERNAL_TOKEN": "t" * 32},
        cwd=tmp_path,
    )
    said = _said(finished).strip()
    assert finished.returncode == 1, said
    assert said == (
        f"kibitz did not start: port {busy_port} is already in use on 127.0.0.1: stop what "
        "listens there or choose another"
    )


@pytest.fixture
def missing_database() -> Iterator[str]:
    """A PostgreSQL URL whose database does not exist yet (dropped afterwards if created)."""
    name = f"kibitz_test_{uuid.uuid4().hex[:10]}_users"
    admin = make_url(POSTGRES_ADMIN_DSN)
    yield str(admin.set(drivername="postgresql+asyncpg", database=name))

    async def drop() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    import asyncio

    asyncio.run(drop())


@pytest.mark.slow
@pytest.mark.postgres
def test_migrate_names_a_missing_database_and_creates_it_when_asked(
    missing_database: str, tmp_path: Path
) -> None:
    env = {"KIBITZ_DATA_DIR": str(tmp_path), "KIBITZ_USERS_DATABASE_URL": missing_database}
    where = make_url(missing_database)
    refused = _kibitz("migrate", "users", env=env, cwd=tmp_path)
    said = _said(refused).strip()
    assert refused.returncode == 1, said
    assert said == (
        f"users: database {where.host}:{where.port or 5432}/{where.database} does not exist "
        "(kibitz migrate --create-databases creates it)"
    )

    created = _kibitz("migrate", "users", "--create-databases", env=env, cwd=tmp_path)
    assert created.returncode == 0, _said(created)
    assert f"created database {where.host}" in _said(created)
    assert "migrated users" in _said(created)
    # Once there, asking again creates nothing and migrates nothing new.
    again = _kibitz("migrate", "users", "--create-databases", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "created database" not in _said(again)


@pytest.mark.slow
@pytest.mark.postgres
async def test_three_concurrent_migrations_on_empty_databases_all_succeed(tmp_path: Path) -> None:
    # Three replicas starting at once: each service's advisory lock makes two of them wait,
    # then find nothing to do (without it: a unique violation on pg_type, issue 15 finding 15).
    services = ["auth", "users", "tenants", "chat", "agents", "knowledge", "billing"]
    async with postgres_databases(services) as urls:
        env = {
            "KIBITZ_DATA_DIR": str(tmp_path),
            **{f"KIBITZ_{name.upper()}_DATABASE_URL": url for name, url in urls.items()},
        }
        clean = {key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")}
        runs = [
            await asyncio.create_subprocess_exec(
                KIBITZ,
                "migrate",
                env={**clean, "KIBITZ_LOG_LEVEL": "WARNING", **env},
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [(await run.communicate())[0].decode() for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output
            assert all(f"migrated {name}" in output for name in services), output
        connection = await asyncpg.connect(urls["auth"].replace("+asyncpg", ""))
        try:
            versions = await connection.fetch("SELECT version_num FROM auth_alembic_version")
        finally:
            await connection.close()
        assert len(versions) == 1


@pytest.mark.slow
def test_doctor_says_what_is_wrong_one_line_each(tmp_path: Path) -> None:
    closed = free_port()
    finished = _kibitz(
        "doctor",
        env={
            "KIBITZ_DATA_DIR": str(tmp_path),
            "KIBITZ_REDIS_URL": f"redis://:hunter2@127.0.0.1:{closed}/0",
            "KIBITZ_USERS_URL": f"http://127.0.0.1:{closed}",
        },
        cwd=tmp_path,
    )
    lines = _said(finished).strip().splitlines()
    assert finished.returncode == 1
    assert any(
        line.startswith(f"✗ Redis redis://127.0.0.1:{closed}/0 does not answer") for line in lines
    )
    assert any(
        line.startswith(f"✗ users at http://127.0.0.1:{closed} does not answer") for line in lines
    )
    assert "✗ KIBITZ_INTERNAL_TOKEN is not set: services cannot call each other" in lines
    assert len(lines) == 3, lines
    assert "hunter2" not in _said(finished)


@pytest.mark.slow
def test_doctor_names_the_encryption_key_agents_replicas_must_share(tmp_path: Path) -> None:
    closed = free_port()
    finished = _kibitz(
        "doctor",
        env={
            "KIBITZ_DATA_DIR": str(tmp_path),
            "KIBITZ_INTERNAL_TOKEN": "t" * 32,
            "KIBITZ_AGENTS_URL": f"http://127.0.0.1:{closed}",
        },
        cwd=tmp_path,
    )
    lines = _said(finished).strip().splitlines()
    assert finished.returncode == 1
    assert (
        "✗ KIBITZ_AGENTS_ENCRYPTION_KEY must be set: every agents replica needs the same value "
        "(only kibitz up generates one)"
    ) in lines
    assert len(lines) == 2, lines  # and agents does not answer


@pytest.mark.slow
def test_doctor_names_a_bad_setting(tmp_path: Path) -> None:
    finished = _kibitz(
        "doctor",
        env={"KIBITZ_DATA_DIR": str(tmp_path), "KIBITZ_CHAT_HEARTBEAT_SECONDS": "-1"},
        cwd=tmp_path,
    )
    assert finished.returncode == 1
    assert (
        _said(finished)
        .strip()
        .startswith("✗ invalid setting KIBITZ_CHAT_HEARTBEAT_SECONDS: Input should be greater than")
    )


@pytest.mark.slow
def test_doctor_is_content_with_a_working_all_in_one_setup(tmp_path: Path) -> None:
    finished = _kibitz("doctor", env={"KIBITZ_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert finished.returncode == 0, _said(finished)
    assert "settings are valid and every dependency answers" in _said(finished)


@pytest.mark.slow
def test_rotate_signing_key_says_which_key_signs_and_until_when_the_old_one_verifies(
    tmp_path: Path,
) -> None:
    env = {"KIBITZ_DATA_DIR": str(tmp_path)}
    assert _kibitz("migrate", "auth", env=env, cwd=tmp_path).returncode == 0
    first = _kibitz("auth", "rotate-signing-key", env=env, cwd=tmp_path)
    second = _kibitz("auth", "rotate-signing-key", env=env, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, _said(second)
    first_kid = _said(first).split()[3].rstrip(":")
    assert f"old key {first_kid} verifies until" in _said(second)


@pytest.mark.slow
def test_replaying_dead_letters_needs_a_broker(tmp_path: Path) -> None:
    finished = _kibitz(
        "events", "replay-dead-letters", env={"KIBITZ_DATA_DIR": str(tmp_path)}, cwd=tmp_path
    )
    assert finished.returncode == 1
    assert _said(finished).startswith("cannot replay: the bus is in-process")


def test_the_start_up_summary_says_where_traces_go_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kibitz.cli import _traces_line

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert _traces_line(PlatformSettings()).startswith("off (KIBITZ_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:s3cret@collector:4318")
    assert _traces_line(PlatformSettings()) == "OTLP to http://collector:4318"
