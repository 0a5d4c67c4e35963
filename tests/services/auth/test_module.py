"""The auth module: migrations, and signing keys that survive restarts and replicas share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import jwt
from alembic.script import ScriptDirectory

from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.services.auth.module import SCHEMA, create_app, module
from tests.fixtures.serving import serving
from tests.fixtures.stack import environment, start_stack

# The newest revision: whichever branch's migration landed last.
SCHEMA_HEAD = ScriptDirectory(str(SCHEMA.migrations_dir)).get_current_head()


async def test_migrate_creates_the_tables_and_its_own_version_table(tmp_path: Path) -> None:
    assert module.name == "auth"
    assert module.migrate is not None
    with environment({"KIBITZ_AUTH_DATABASE_URL": ""}):
        await module.migrate(Platform(settings=PlatformSettings(data_dir=tmp_path)))
        await module.migrate(Platform(settings=PlatformSettings(data_dir=tmp_path)))
    with sqlite3.connect(tmp_path / "auth.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        version = connection.execute("SELECT version_num FROM auth_alembic_version").fetchall()
    assert {
        "users",
        "refresh_tokens",
        "refresh_token_families",
        "signing_keys",
        "outbox",
        "api_keys",
    } <= tables
    assert version == [(SCHEMA_HEAD,)]


async def test_the_signing_key_survives_a_restart(tmp_path: Path) -> None:
    async with start_stack(["auth"], data_dir=tmp_path) as stack:
        account = await stack.register()
        kid = jwt.get_unverified_header(account.access_token)["kid"]
    async with start_stack(["auth"], data_dir=tmp_path) as stack:
        me = await stack.http.get(f"{stack.url('auth')}/auth/me", headers=account.headers)
        assert me.status_code == 200
        jwks = (await stack.http.get(f"{stack.url('auth')}/auth/jwks")).json()
        assert [key["kid"] for key in jwks["keys"]] == [kid]
        refreshed = await stack.http.post(
            f"{stack.url('auth')}/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        assert refreshed.status_code == 200
        assert jwt.get_unverified_header(refreshed.json()["access_token"])["kid"] == kid


async def test_replicas_on_one_database_sign_with_the_same_key(tmp_path: Path) -> None:
    platform = Platform(
        settings=PlatformSettings(data_dir=tmp_path, migrate_on_start=True), internal_token="s"
    )
    with environment({"KIBITZ_AUTH_DATABASE_URL": ""}):
        async with (
            serving(create_app(platform)) as first,
            serving(create_app(platform)) as second,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            registered = await http.post(
                f"{first}/auth/register",
                json={"email": "replica@example.com", "password": "replicas share keys"},
            )
            token = registered.json()["access_token"]
            me = await http.get(f"{second}/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
            login = await http.post(
                f"{second}/auth/login",
                json={"email": "replica@example.com", "password": "replicas share keys"},
            )
            first_kid = jwt.get_unverified_header(token)["kid"]
            assert jwt.get_unverified_header(login.json()["access_token"])["kid"] == first_kid
