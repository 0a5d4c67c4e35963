"""A database that cannot be had answers 503 with Retry-After, on every route, and the service
recovers when it is back (issue 15, finding 12)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from kibitz.kit.db import ConnectionPool, Database
from kibitz.kit.db.availability import DatabaseUnavailable, database_unavailable
from kibitz.kit.errors import PROBLEM_MEDIA_TYPE
from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.registry import SERVICE_NAMES, available_modules
from tests.fixtures.stack import POSTGRES_ADMIN_DSN, Stack, postgres_databases, start_stack
from tests.fixtures.tcp_proxy import TcpProxy


def _unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert int(answer.headers["retry-after"]) >= 1
    body = answer.json()
    assert body["status"] == 503 and body["type"].endswith("/database-unavailable")
    assert "postgres" not in answer.text.lower()  # nothing about the server's whereabouts


@asynccontextmanager
async def _agents_on(url: str, tmp_path: Path, **env: str) -> AsyncIterator[Stack]:
    values = {"KIBITZ_AGENTS_DATABASE_URL": url, **env}
    async with start_stack(["auth", "agents"], data_dir=tmp_path, env=values) as stack:
        yield stack


@pytest.mark.postgres
async def test_a_service_whose_database_is_down_answers_503_and_recovers(tmp_path: Path) -> None:
    async with postgres_databases(["agents"]) as urls:
        proxy = TcpProxy("127.0.0.1", 5432)
        await proxy.start()
        through_proxy = make_url(urls["agents"]).set(port=proxy.port)
        url = through_proxy.render_as_string(hide_password=False)
        try:
            async with _agents_on(url, tmp_path) as stack:
                account = await stack.register()
                mine = f"{stack.url('agents')}/agents/my"
                assert (await stack.http.get(mine, headers=account.headers)).status_code == 200

                await proxy.stop()  # the server is gone: open connections cut, new ones refused
                _unavailable(await stack.http.get(mine, headers=account.headers))
                _unavailable(await stack.http.get(mine, headers=account.headers))

                await proxy.start()
                back = await stack.http.get(mine, headers=account.headers)
                assert back.status_code == 200, back.text
        finally:
            await proxy.stop()


@pytest.mark.postgres
async def test_a_pool_busy_past_its_timeout_answers_503_and_serves_once_freed(
    tmp_path: Path,
) -> None:
    async with postgres_databases(["agents"]) as urls:
        env = {
            "KIBITZ_AGENTS_DATABASE_POOL_SIZE": "1",
            "KIBITZ_AGENTS_DATABASE_MAX_OVERFLOW": "0",
            "KIBITZ_AGENTS_DATABASE_POOL_TIMEOUT_SECONDS": "0.5",
        }
        async with _agents_on(urls["agents"], tmp_path, **env) as stack:
            account = await stack.register()
            mine = f"{stack.url('agents')}/agents/my"
            database: Database = stack.running.apps["agents"].state.database
            async with database.engine.connect() as held:  # the pool's only connection
                await held.execute(text("SELECT 1"))
                _unavailable(await stack.http.get(mine, headers=account.headers))
            freed = await stack.http.get(mine, headers=account.headers)
            assert freed.status_code == 200, freed.text


@pytest.mark.postgres
async def test_a_server_with_no_connection_slot_left_is_unavailable_not_an_error() -> None:
    # PostgreSQL's "too many clients" (SQLSTATE 53300), here for a role allowed none.
    role = f"kibitz_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        url = make_url(POSTGRES_ADMIN_DSN).set(drivername="postgresql+asyncpg", username=role)
        database = Database(url.render_as_string(hide_password=False))
        try:
            with pytest.raises(DatabaseUnavailable):
                await database.ping()
        finally:
            await database.dispose()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


def test_a_connection_broken_under_a_statement_is_unavailable() -> None:
    broken = OperationalError("SELECT 1", {}, ConnectionResetError(), connection_invalidated=True)
    problem = database_unavailable(broken)
    assert problem is not None and problem.status == 503 and "Retry-After" in problem.headers
    other = OperationalError("SELECT 1", {}, ValueError("a bug"))
    assert database_unavailable(other) is None


def test_the_pool_settings_reach_the_engine() -> None:
    pool = ConnectionPool(size=3, max_overflow=2, timeout_seconds=1.5)
    database = Database("postgresql+asyncpg://kibitz@127.0.0.1:5432/none", pool=pool)
    engine_pool = database.engine.pool
    assert engine_pool.size() == 3  # type: ignore[attr-defined]
    assert engine_pool._max_overflow == 2  # type: ignore[attr-defined]
    assert engine_pool._timeout == 1.5  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_sizes_its_pool_from_its_own_settings(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix = f"KIBITZ_{service.upper()}_DATABASE"
    monkeypatch.setenv(f"{prefix}_URL", "postgresql+asyncpg://kibitz@127.0.0.1:5432/none")
    monkeypatch.setenv(f"{prefix}_POOL_SIZE", "3")
    monkeypatch.setenv(f"{prefix}_MAX_OVERFLOW", "1")
    monkeypatch.setenv(f"{prefix}_POOL_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("KIBITZ_DATA_DIR", str(tmp_path))
    others = {name: ["http://127.0.0.1:9"] for name in SERVICE_NAMES}
    module = available_modules([service])[service]
    app = module.create_app(
        Platform(settings=PlatformSettings(data_dir=tmp_path), service_urls=others)
    )
    engine_pool = app.state.database.engine.pool
    assert (engine_pool.size(), engine_pool._max_overflow, engine_pool._timeout) == (3, 1, 2.5)


@pytest.mark.postgres
async def test_a_connection_cut_while_it_sat_idle_is_replaced_before_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with postgres_databases(["agents"]) as urls:
        database = Database(urls["agents"], pool=ConnectionPool(size=1, max_overflow=0))
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)

        async def backend() -> int:
            async with database.transaction() as session:
                return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())

        async def cut(pid: int) -> None:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)

        try:
            # Handed back a moment ago: no ping (a round trip saved per transaction), so a
            # connection cut meanwhile fails its next statement, and the pool starts anew.
            first = await backend()
            await cut(first)
            with pytest.raises(DBAPIError) as broken:
                await backend()
            assert broken.value.connection_invalidated
            assert database_unavailable(broken.value) is not None  # a 503, not a 500
            second = await backend()
            assert second != first

            # Idle past the threshold: pinged on checkout, found cut, replaced unseen.
            monkeypatch.setattr("kibitz.kit.db.database.PING_AFTER_IDLE_SECONDS", 0.0)
            await cut(second)
            third = await backend()
            assert third not in (first, second)
        finally:
            await admin.close()
            await database.dispose()
