"""Auth business rules: login throttling, tenants, rotation races, password policy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from kibitz.kit.http import FORWARDED_BY_HEADER, forwarding_credential
from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.registry import load_module
from kibitz.runtime.server import bind_socket
from kibitz.services.auth.errors import WeakPassword
from kibitz.services.auth.module import create_app
from kibitz.services.auth.service import check_password_policy, common_passwords
from tests.fixtures.serving import serving
from tests.fixtures.stack import (
    DEFAULT_PASSWORD,
    Stack,
    environment,
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
