"""The key ring: a rotated key is published before it signs, the old one verifies until its
tokens have expired, and a running auth service picks the rotation up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from kibitz.kit.db import Database
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, InvalidToken, TokenVerifier
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.operations import rotate_signing_key
from kibitz.services.auth.module import SCHEMA
from kibitz.services.auth.signing_keys.repository import list_published_signing_keys
from kibitz.services.auth.signing_keys.service import KeyRing
from tests.fixtures.stack import one_database, start_stack


@pytest.fixture
async def auth_database(tmp_path: Path, database: str) -> AsyncIterator[Database]:
    """auth's migrated database, on SQLite and PostgreSQL."""
    async with one_database(database, tmp_path, "auth") as url:
        await SCHEMA.upgrade(url)
        db = Database(url)
        try:
            yield db
        finally:
            await db.dispose()


async def _verifies(keys: KeyRing, token: str) -> bool:
    try:
        await TokenVerifier(keys.jwks).verify(token)
    except InvalidToken:
        return False
    return True


def _token(keys: KeyRing) -> str:
    return keys.signing_key.issue_access_token(
        user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="member"
    )


async def test_a_rotated_key_is_published_first_then_signs(auth_database: Database) -> None:
    replica = KeyRing(auth_database)
    await replica.load()
    old_kid = replica.signing_key.kid
    rotated_at = datetime.now(UTC)

    rotated = await KeyRing(auth_database).rotate(now=rotated_at)

    assert rotated.kid != old_kid and list(rotated.verifying_until) == [old_kid]
    # Published at once, so verifiers know it before any token it signs reaches them...
    await replica.load(now=rotated_at)
    assert {key["kid"] for key in (await replica.jwks())["keys"]} == {old_kid, rotated.kid}
    # ...while the old key keeps signing until the new one has been published long enough.
    assert replica.signing_key.kid == old_kid
    await replica.load(now=rotated.signs_from + timedelta(seconds=1))
    assert replica.signing_key.kid == rotated.kid


async def test_tokens_of_a_rotated_key_verify_until_they_expire(auth_database: Database) -> None:
    keys = KeyRing(auth_database)
    await keys.load()
    old_token = _token(keys)
    rotated_at = datetime.now(UTC)
    rotated = await keys.rotate(now=rotated_at)
    await keys.load(now=rotated.signs_from + timedelta(seconds=1))
    new_token = _token(keys)

    assert await _verifies(keys, old_token) and await _verifies(keys, new_token)
    retired = next(iter(rotated.verifying_until.values()))
    # Past the grace the old key is gone: no token it signed can still be valid by then.
    assert retired - rotated_at > timedelta(seconds=ACCESS_TOKEN_SECONDS)
    await keys.load(now=retired + timedelta(seconds=1))
    async with auth_database.transaction() as session:
        published = await list_published_signing_keys(session, now=retired + timedelta(seconds=1))
    assert [record.kid for record in published] == [rotated.kid]


async def test_a_rotation_reaches_a_running_auth_service(tmp_path: Path) -> None:
    async with start_stack(["auth"], data_dir=tmp_path) as stack:
        before = (await stack.http.get(f"{stack.url('auth')}/auth/jwks")).json()["keys"]
        app = stack.running.apps["auth"]
        rotated = await rotate_signing_key(PlatformSettings(data_dir=tmp_path))
        keys: KeyRing = app.state.auth_service.keys
        await keys.load(now=rotated.signs_from + timedelta(seconds=1))
        account = await stack.register()
        kid = jwt.get_unverified_header(account.access_token)["kid"]
        me = await stack.http.get(f"{stack.url('auth')}/auth/me", headers=account.headers)

    assert [key["kid"] for key in before] == list(rotated.verifying_until)
    assert kid == rotated.kid
    assert me.status_code == 200, me.text
