"""Auth business rules: login throttling, tenants, rotation races, password policy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from kibitz.kit.db import Database
from kibitz.kit.http import FORWARDED_BY_HEADER, forwarding_credential
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, InvalidToken, TokenVerifier
from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.operations import rotate_signing_key
from kibitz.runtime.registry import load_module
from kibitz.runtime.server import bind_socket
from kibitz.services.auth.errors import WeakPassword
from kibitz.services.auth.module import SCHEMA, create_app
from kibitz.services.auth.repository import list_published_signing_keys
from kibitz.services.auth.service import KeyRing, check_password_policy, common_passwords
from tests.fixtures.serving import serving
from tests.fixtures.stack import (
    DEFAULT_PASSWORD,
    Stack,
    environment,
    one_database,
    start_stack,
)


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
async def fresh_auth(tmp_path: Path, database: str) -> AsyncIterator[Stack]:
    """An auth service of its own (fresh login counters), on SQLite and PostgreSQL."""
    async with start_stack(["auth"], data_dir=tmp_path, database=database) as stack:
        yield stack


async def _login(
    stack: Stack, email: str, password: str, *, ip: str = "198.51.100.1"
) -> httpx.Response:
    # As the gateway does: its X-Forwarded-For, vouched for by the forwarding credential.
    credential = forwarding_credential(stack.running.platform.internal_token)
    return await stack.http.post(
        f"{stack.url('auth')}/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip, FORWARDED_BY_HEADER: credential},
    )


# --- brute force ------------------------------------------------------------------------------


async def test_failures_slow_the_guessing_address_not_the_owner(fresh_auth: Stack) -> None:
    account = await fresh_auth.register()
    for _ in range(5):
        wrong = await _login(fresh_auth, account.email, "wrong password", ip="203.0.113.9")
        assert wrong.status_code == 401
    blocked = await _login(fresh_auth, account.email, "wrong password", ip="203.0.113.9")
    assert blocked.status_code == 429
    assert blocked.headers["content-type"].startswith("application/problem+json")
    # A delay, not a lock: the first one is a second.
    assert int(blocked.headers["retry-after"]) == 1
    # The owner, from their own address, is not held up (issue 15, finding 2).
    right = await _login(fresh_auth, account.email, account.password, ip="198.51.100.20")
    assert right.status_code == 200
    # Nor is another guess at the account from another address (the account is not locked).
    other = await _login(fresh_auth, account.email, "wrong password", ip="198.51.100.21")
    assert other.status_code == 401


async def test_unknown_emails_are_throttled_like_known_ones(fresh_auth: Stack) -> None:
    email = new_email()
    for _ in range(5):
        assert (await _login(fresh_auth, email, "whatever it is")).status_code == 401
    assert (await _login(fresh_auth, email, "whatever it is")).status_code == 429


async def test_the_wait_doubles_with_each_further_failure(fresh_auth: Stack) -> None:
    account = await fresh_auth.register()
    for _ in range(5):
        assert (await _login(fresh_auth, account.email, "wrong password")).status_code == 401
    waits = []
    for _ in range(2):
        blocked = await _login(fresh_auth, account.email, "wrong password")
        assert blocked.status_code == 429
        waits.append(int(blocked.headers["retry-after"]))
        await asyncio.sleep(waits[-1] + 0.05)
        assert (await _login(fresh_auth, account.email, "wrong password")).status_code == 401
    blocked = await _login(fresh_auth, account.email, "wrong password")
    waits.append(int(blocked.headers["retry-after"]))
    assert waits == [1, 2, 4]


async def test_a_burst_of_parallel_guesses_gets_no_more_than_the_free_ones(
    fresh_auth: Stack,
) -> None:
    account = await fresh_auth.register()
    answers = await asyncio.gather(
        *(_login(fresh_auth, account.email, "wrong password") for _ in range(15))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * 5 + [429] * 10


async def test_failures_from_one_address_over_many_accounts_slow_that_address(
    fresh_auth: Stack,
) -> None:
    account = await fresh_auth.register()
    for _ in range(20):
        response = await _login(fresh_auth, new_email(), "wrong password", ip="203.0.113.9")
        assert response.status_code == 401
    blocked = await _login(fresh_auth, account.email, account.password, ip="203.0.113.9")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    elsewhere = await _login(fresh_auth, account.email, account.password, ip="203.0.113.10")
    assert elsewhere.status_code == 200


async def test_an_account_guessed_from_many_addresses_meets_the_ceiling(tmp_path: Path) -> None:
    env = {"KIBITZ_AUTH_LOGIN_FAILURES_PER_ACCOUNT": "8"}
    async with start_stack(["auth"], data_dir=tmp_path, env=env) as stack:
        account = await stack.register()
        for attempt in range(8):
            wrong = await _login(stack, account.email, "wrong", ip=f"10.0.0.{attempt}")
            assert wrong.status_code == 401
        blocked = await _login(stack, account.email, account.password, ip="10.0.1.1")
        assert blocked.status_code == 429
        # The ceiling is the account's: another account from the same addresses is not affected.
        other = await stack.register()
        assert (await _login(stack, other.email, other.password, ip="10.0.0.1")).status_code == 200


async def test_a_successful_login_forgives_the_address_s_failures(fresh_auth: Stack) -> None:
    account = await fresh_auth.register()
    for _ in range(4):
        assert (await _login(fresh_auth, account.email, "wrong password")).status_code == 401
    assert (await _login(fresh_auth, account.email, account.password)).status_code == 200
    for _ in range(4):
        assert (await _login(fresh_auth, account.email, "wrong password")).status_code == 401
    assert (await _login(fresh_auth, account.email, account.password)).status_code == 200


@pytest.mark.redis
async def test_login_counters_live_in_redis_when_configured(tmp_path: Path) -> None:
    email = new_email()
    # A prefix of its own (db 0 is shared machine-wide), deleted afterwards.
    prefix = f"kibitz-test-{uuid.uuid4().hex}"
    env = {
        "KIBITZ_REDIS_URL": "redis://127.0.0.1:6379/0",
        "KIBITZ_AUTH_LOGIN_THROTTLE_KEY_PREFIX": prefix,
    }
    redis = Redis.from_url(env["KIBITZ_REDIS_URL"])
    try:
        async with start_stack(["auth"], data_dir=tmp_path / "one", env=env) as first:
            for _ in range(5):
                assert (await _login(first, email, "wrong password")).status_code == 401
        # A second auth process (same Redis) sees the same counters.
        async with start_stack(["auth"], data_dir=tmp_path / "two", env=env) as second:
            blocked = await _login(second, email, "wrong password")
            assert blocked.status_code == 429
            assert int(blocked.headers["retry-after"]) > 0
            # Still only the guessing address: the owner elsewhere gets in.
            assert (await _login(second, email, "wrong", ip="198.51.100.99")).status_code == 401
        assert [key async for key in redis.scan_iter(f"{prefix}:*")]
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


# --- refresh races ----------------------------------------------------------------------------


async def test_concurrent_refreshes_of_one_token_let_at_most_one_through(
    fresh_auth: Stack,
) -> None:
    account = await fresh_auth.register()
    url = f"{fresh_auth.url('auth')}/auth/refresh"
    answers = await asyncio.gather(
        *(
            fresh_auth.http.post(url, json={"refresh_token": account.refresh_token})
            for _ in range(5)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(200) <= 1
    assert set(statuses) <= {200, 401}
    assert all(status < 500 for status in statuses)


async def test_concurrent_registrations_of_one_email_create_one_account(
    fresh_auth: Stack,
) -> None:
    email = new_email()
    url = f"{fresh_auth.url('auth')}/auth/register"
    answers = await asyncio.gather(
        *(
            fresh_auth.http.post(
                url, json={"email": email if n % 2 else email.upper(), "password": DEFAULT_PASSWORD}
            )
            for n in range(6)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409, 409]


async def test_passwords_with_control_characters_work(fresh_auth: Stack) -> None:
    account = await fresh_auth.register(password="tab\there\x00nul and more")
    assert (await _login(fresh_auth, account.email, account.password)).status_code == 200


# --- tenants ----------------------------------------------------------------------------------


async def test_register_answers_503_and_keeps_no_user_when_tenants_is_unreachable(
    tmp_path: Path,
) -> None:
    closed = bind_socket("127.0.0.1", 0)
    dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    platform = Platform(
        settings=PlatformSettings(data_dir=tmp_path, migrate_on_start=True),
        service_urls={"tenants": [dead_url]},
        internal_token="secret",
    )
    with environment({"KIBITZ_AUTH_DATABASE_URL": ""}):
        async with (
            serving(create_app(platform)) as url,
            httpx.AsyncClient(base_url=url, trust_env=False) as client,
        ):
            email = new_email()
            response = await client.post(
                "/auth/register", json={"email": email, "password": DEFAULT_PASSWORD}
            )
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "Retry-After" in response.headers
            login = await client.post(
                "/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
            )
            assert login.status_code == 401


@pytest.mark.skipif(load_module("tenants") is None, reason="the tenants service is not built yet")
async def test_register_joins_the_tenant_the_tenants_service_names(
    tmp_path: Path, database: str
) -> None:
    async with start_stack(["tenants", "auth"], data_dir=tmp_path, database=database) as stack:
        auth_url = stack.url("auth")
        owner = await stack.register(tenant_name="Acme")
        assert owner.user["role"] == "owner"
        invite = await stack.http.post(
            f"{stack.url('tenants')}/tenants/invites", json={}, headers=owner.headers
        )
        assert invite.status_code == 201, invite.text
        code = invite.json()["code"]

        member = await stack.register(invite_code=code)
        assert member.user["tenant_id"] == owner.tenant_id
        assert member.user["role"] == invite.json()["role"]
        me = await stack.http.get(f"{auth_url}/auth/me", headers=member.headers)
        assert (me.json()["tenant_id"], me.json()["role"]) == (owner.tenant_id, member.user["role"])

        # The code was single-use; an unknown one is refused too. Neither leaves a user behind.
        for bad_code in (code, "no-such-invite"):
            email = new_email()
            refused = await stack.http.post(
                f"{auth_url}/auth/register",
                json={"email": email, "password": DEFAULT_PASSWORD, "invite_code": bad_code},
            )
            assert refused.status_code in (404, 409, 410), refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["detail"]
            login = await stack.http.post(
                f"{auth_url}/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
            )
            assert login.status_code == 401


# --- password policy --------------------------------------------------------------------------


def test_the_bundled_common_password_list_is_large_and_lower_case() -> None:
    passwords = common_passwords()
    assert len(passwords) > 10_000
    assert {"password", "12345678", "iloveyou", "sunshine"} <= passwords
    assert all(password == password.lower() for password in passwords)


@pytest.mark.parametrize("password", ["PASSWORD", "Sunshine1", "baseball"])
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password, email="ada@example.com")


def test_the_email_is_not_a_password() -> None:
    with pytest.raises(WeakPassword):
        check_password_policy("Ada.Lovelace@example.com", email="ada.lovelace@example.com")


def test_an_uncommon_passphrase_passes() -> None:
    check_password_policy("correct horse battery staple", email="ada@example.com")


@pytest.mark.skipif(load_module("tenants") is None, reason="the tenants service is not built yet")
async def test_registrations_that_lose_the_race_for_an_email_leave_no_tenant_behind(
    tmp_path: Path, database: str
) -> None:
    from sqlalchemy import func, select

    from kibitz.services.tenants.models import Membership, Tenant

    async with start_stack(["tenants", "auth"], data_dir=tmp_path, database=database) as stack:
        email = new_email()
        answers = await asyncio.gather(
            *(
                stack.http.post(
                    f"{stack.url('auth')}/auth/register",
                    json={"email": email.upper() if n % 2 else email, "password": DEFAULT_PASSWORD},
                )
                for n in range(6)
            )
        )
        assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409, 409, 409]
        winner = next(answer.json() for answer in answers if answer.status_code == 201)
        tenants_db = stack.running.apps["tenants"].state.database
        async with tenants_db.transaction() as session:
            tenant_ids = list(await session.scalars(select(Tenant.id)))
            members = await session.scalar(select(func.count()).select_from(Membership))
        assert [str(tenant_id) for tenant_id in tenant_ids] == [winner["user"]["tenant_id"]]
        assert members == 1


# --- signing key rotation ---------------------------------------------------------------------


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
