"""Tenancy end to end: register makes or joins a tenant, invites, events surviving an outage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from kibitz.services.users.models import Profile
from tests.fixtures.stack import DEFAULT_PASSWORD, Account, Stack, start_stack
from tests.fixtures.tcp_proxy import TcpProxy, free_port


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("tenancy")
    async with start_stack(["auth", "tenants", "users"], data_dir=data_dir) as running:
        yield running


async def register(stack: Stack, **body: Any) -> Any:
    body.setdefault("email", f"e2e-{uuid.uuid4().hex[:10]}@example.com")
    body.setdefault("password", DEFAULT_PASSWORD)
    return await stack.http.post(f"{stack.url('auth')}/auth/register", json=body)


async def invite(stack: Stack, account: Account, role: str = "member") -> str:
    response = await stack.http.post(
        f"{stack.url('tenants')}/tenants/invites", headers=account.headers, json={"role": role}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


async def test_an_invited_user_joins_the_inviters_tenant_and_both_share_it(stack: Stack) -> None:
    owner = await stack.register(tenant_name="Shared Co")
    code = await invite(stack, owner)
    joined = await stack.register(invite_code=code)
    assert joined.tenant_id == owner.tenant_id
    assert joined.user["role"] == "member"
    me = await stack.http.get(f"{stack.url('auth')}/auth/me", headers=joined.headers)
    assert me.json()["tenant_id"] == owner.tenant_id
    members = await stack.http.get(
        f"{stack.url('tenants')}/tenants/members", headers=joined.headers
    )
    assert {(m["email"], m["role"]) for m in members.json()["items"]} == {
        (owner.email, "owner"),
        (joined.email, "member"),
    }
    for account in (owner, joined):
        plan = await stack.http.get(f"{stack.url('tenants')}/tenants/plan", headers=account.headers)
        assert plan.json()["tenant_name"] == "Shared Co"
        profile = await stack.http.get(f"{stack.url('users')}/users/me", headers=account.headers)
        assert profile.json()["subscription"]["tenant_id"] == owner.tenant_id
    # An upgrade by the owner applies to the member at once.
    await stack.http.post(
        f"{stack.url('tenants')}/tenants/subscribe", headers=owner.headers, json={"plan": "premium"}
    )
    plan = await stack.http.get(f"{stack.url('tenants')}/tenants/plan", headers=joined.headers)
    assert plan.json()["plan"] == "premium"


async def test_an_admin_invite_makes_an_admin(stack: Stack) -> None:
    owner = await stack.register()
    admin = await stack.register(invite_code=await invite(stack, owner, "admin"))
    assert admin.user["role"] == "admin"
    assert admin.tenant_id == owner.tenant_id


async def test_a_used_or_unknown_invite_code_is_refused_and_makes_no_user(stack: Stack) -> None:
    owner = await stack.register()
    code = await invite(stack, owner)
    await stack.register(invite_code=code)
    email = f"late-{uuid.uuid4().hex[:8]}@example.com"
    used = await register(stack, email=email, invite_code=code)
    assert used.status_code == 409, used.text
    assert used.headers["content-type"].startswith("application/problem+json")
    unknown = await register(stack, email=email, invite_code="no-such-code")
    assert unknown.status_code == 404, unknown.text
    # Neither attempt left an account behind: the email is still free.
    fresh = await register(stack, email=email)
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["user"]["tenant_id"] != owner.tenant_id


async def test_register_answers_503_and_makes_no_user_while_tenants_is_unreachable(
    stack: Stack,
) -> None:
    tenants_client = stack.running.apps["auth"].state.auth_service.tenants
    saved = tenants_client.pool.base_urls
    tenants_client.pool.base_urls = [f"http://127.0.0.1:{free_port()}"]
    email = f"outage-{uuid.uuid4().hex[:8]}@example.com"
    try:
        refused = await register(stack, email=email)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        tenants_client.pool.base_urls = saved
        tenants_client.pool._down_until.clear()
    login = await stack.http.post(
        f"{stack.url('auth')}/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 401
    again = await register(stack, email=email)
    assert again.status_code == 201, again.text


# -- the bus outage ---------------------------------------------------------------------------


BROKERS = [
    pytest.param(("redis", 6379), marks=pytest.mark.redis, id="redis"),
    pytest.param(("nats", 4222), marks=pytest.mark.nats, id="nats"),
]


async def count_profiles(stack: Stack, account: Account) -> int:
    database = stack.running.apps["users"].state.database
    async with database.transaction() as session:
        query = select(func.count()).where(Profile.auth_user_id == uuid.UUID(account.user["id"]))
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize("broker", BROKERS)
async def test_users_registered_while_the_broker_is_down_all_get_one_profile_once_it_is_back(
    tmp_path: Path, broker: tuple[str, int]
) -> None:
    scheme, port = broker
    proxy = TcpProxy("127.0.0.1", port)
    await proxy.start()
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    suffix = "/0" if scheme == "redis" else ""
    bus_url = f"{scheme}://127.0.0.1:{proxy.port}{suffix}?prefix={prefix}"
    try:
        async with start_stack(
            ["auth", "tenants", "users"], data_dir=tmp_path, env={"KIBITZ_BUS_URL": bus_url}
        ) as stack:
            before = await stack.register()

            async def profile_made(account: Account) -> bool:
                return await count_profiles(stack, account) == 1

            for _ in range(400):
                if await profile_made(before):
                    break
                await asyncio.sleep(0.05)
            assert await profile_made(before), "the bus must work before the outage"

            await proxy.stop()
            during = [await stack.register() for _ in range(5)]
            await asyncio.sleep(1.0)
            assert [await count_profiles(stack, a) for a in during] == [0] * 5

            await proxy.start()
            for _ in range(1200):
                if all([await profile_made(a) for a in during]):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            assert [await count_profiles(stack, a) for a in [before, *during]] == [1] * 6
            inbox = stack.running.apps["users"].state.inbox
            assert await inbox.handled_count("users") == 6
            assert await inbox.parked("users") == []
    finally:
        await proxy.stop()


async def test_a_plan_change_raises_the_gateway_rate_limit(tmp_path: Path) -> None:
    async with start_stack(
        ["auth", "tenants", "users", "agents", "chat", "gateway"], data_dir=tmp_path / "gw"
    ) as stack:
        owner = await stack.register()  # through the gateway
        plan_url = f"{stack.entry}/tenants/plan"
        before = await stack.http.get(plan_url, headers=owner.headers)
        assert before.status_code == 200
        # A read: the per-user read limit, whatever the plan.
        assert before.headers["ratelimit-limit"] == "600"

        async def send_limit() -> str:
            # An empty send: refused by chat (422), but counted by the gateway as a send.
            response = await stack.http.post(
                f"{stack.entry}/chat/send", headers=owner.headers, json={}
            )
            assert response.status_code == 422, response.text
            return response.headers["ratelimit-limit"]

        assert await send_limit() == "60"
        upgraded = await stack.http.post(
            f"{stack.entry}/tenants/subscribe", headers=owner.headers, json={"plan": "gold"}
        )
        assert upgraded.status_code == 200
        limits = []
        for _ in range(100):
            limits.append(await send_limit())
            if limits[-1] == "1200":
                break
            await asyncio.sleep(0.05)
        assert limits[-1] == "1200", limits
        print(f"gateway saw the new limit on request {len(limits)} after the upgrade")
