"""Removing a member: who may, whom not, the event it publishes, and auth ending the removed
person's account at once (their token refused in every service, their login too)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from kibitz.contracts.events import AccountDeleted, MemberRemoved
from kibitz.kit.events import EventEnvelope
from tests.fixtures.stack import DEFAULT_PASSWORD, Account, Stack, start_stack
from tests.services.tenants.conftest import Tenants
from tests.services.tenants.test_api import assert_problem, team


async def remove(tenants: Tenants, account: Account, user_id: str) -> int:
    response = await tenants.http.delete(
        f"{tenants.base}/tenants/members/{user_id}", headers=account.headers
    )
    return response.status_code


async def members_of(tenants: Tenants, account: Account) -> set[str]:
    response = await tenants.get("/tenants/members", account)
    assert response.status_code == 200, response.text
    return {item["user_id"] for item in response.json()["items"]}


async def test_an_owner_removes_a_member_whose_account_ends_at_once(
    stack: Stack, tenants: Tenants
) -> None:
    seen: list[EventEnvelope] = []

    async def observe(envelope: EventEnvelope) -> None:
        seen.append(envelope)

    subscription = await stack.running.platform.bus.subscribe(
        [MemberRemoved.name, AccountDeleted.name],
        group=f"observer-{uuid.uuid4().hex[:6]}",
        handler=observe,
    )
    try:
        owner, _, member = await team(stack, tenants)
        member_id = str(member.user["id"])
        assert (await tenants.get("/tenants/plan", member)).status_code == 200
        assert await remove(tenants, owner, member_id) == 204
        assert member_id not in await members_of(tenants, owner)
        # Auth hears the removal and ends the account; the member's token stops everywhere.
        for _ in range(200):
            if any(e.name == AccountDeleted.name for e in seen):
                break
            await asyncio.sleep(0.05)
        removed = [e for e in seen if e.name == MemberRemoved.name]
        assert [e.payload for e in removed] == [
            {"tenant_id": owner.tenant_id, "user_id": member_id}
        ]
        deleted = [e.payload for e in seen if e.name == AccountDeleted.name]
        assert deleted == [
            {"user_id": member_id, "tenant_id": owner.tenant_id, "reason": "removed"}
        ]
        assert (await tenants.get("/tenants/plan", member)).status_code == 401
        login = await stack.http.post(
            f"{stack.url('auth')}/auth/login",
            json={"email": member.email, "password": DEFAULT_PASSWORD},
        )
        assert login.status_code == 401
        # The others carry on.
        assert (await tenants.get("/tenants/plan", owner)).status_code == 200
    finally:
        await subscription.cancel()


async def test_an_admin_removes_members_but_not_an_owner_and_a_member_removes_nobody(
    stack: Stack, tenants: Tenants
) -> None:
    owner, admin, member = await team(stack, tenants)
    other = await stack.register(invite_code=await _invite(tenants, owner))
    assert_problem(
        await tenants.http.delete(
            f"{tenants.base}/tenants/members/{other.user['id']}", headers=member.headers
        ),
        403,
    )
    refused = await tenants.http.delete(
        f"{tenants.base}/tenants/members/{owner.user['id']}", headers=admin.headers
    )
    assert assert_problem(refused, 403)["type"].endswith("role-required")
    assert await remove(tenants, admin, str(other.user["id"])) == 204
    assert await members_of(tenants, owner) == {
        str(owner.user["id"]),
        str(admin.user["id"]),
        str(member.user["id"]),
    }


async def test_nobody_removes_themselves_that_way(stack: Stack, tenants: Tenants) -> None:
    owner, admin, _ = await team(stack, tenants)
    for account in (owner, admin):
        response = await tenants.http.delete(
            f"{tenants.base}/tenants/members/{account.user['id']}", headers=account.headers
        )
        body = assert_problem(response, 409)
        assert body["type"].endswith("cannot-remove-yourself")
        assert "delete your account" in body["detail"]


async def test_another_tenants_user_or_an_unknown_one_is_404(
    stack: Stack, tenants: Tenants
) -> None:
    owner, _, _ = await team(stack, tenants)
    stranger = await stack.register(tenant_name="Elsewhere")
    for user_id in (str(stranger.user["id"]), str(uuid.uuid4())):
        response = await tenants.http.delete(
            f"{tenants.base}/tenants/members/{user_id}", headers=owner.headers
        )
        assert assert_problem(response, 404)["type"].endswith("member-not-found")
    assert (await tenants.get("/tenants/plan", stranger)).status_code == 200
    bad = await tenants.http.delete(
        f"{tenants.base}/tenants/members/not-a-uuid", headers=owner.headers
    )
    assert_problem(bad, 422)


async def test_the_departure_check_refuses_the_only_owner_of_others(
    stack: Stack, tenants: Tenants
) -> None:
    owner, admin, member = await team(stack, tenants)
    alone = await stack.register()
    refused = await tenants.internal("GET", f"/memberships/{owner.user['id']}/departure")
    assert assert_problem(refused, 409)["type"].endswith("last-owner")
    for account in (admin, member, alone):
        allowed = await tenants.internal("GET", f"/memberships/{account.user['id']}/departure")
        assert allowed.status_code == 204


async def _invite(tenants: Tenants, owner: Account) -> str:
    response = await tenants.post("/tenants/invites", owner, json={"role": "member"})
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


@pytest.mark.parametrize("bus", ["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def test_leaving_travels_on_the_bus_to_every_consumer(tmp_path: Path, bus: str) -> None:
    """tenants.member_removed -> auth ends the account -> auth.account_deleted -> tenants and
    users erase the person, on the in-process bus and on NATS JetStream."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    bus_url = f"nats://127.0.0.1:4222?prefix={prefix}" if bus == "nats" else "memory"
    env = {"KIBITZ_BUS_URL": bus_url}
    async with start_stack(["auth", "tenants", "users"], data_dir=tmp_path, env=env) as stack:
        tenants = Tenants(stack)
        owner, admin, member = await team(stack, tenants)
        users = stack.url("users")
        assert (
            await stack.http.get(f"{users}/users/me", headers=member.headers)
        ).status_code == 200
        assert await remove(tenants, owner, str(member.user["id"])) == 204
        await stack.delete_account(admin)

        async def gone() -> bool:
            statuses = [
                (await stack.http.get(f"{users}/users/me", headers=a.headers)).status_code
                for a in (member, admin)
            ]
            return statuses == [401, 401] and await members_of(tenants, owner) == {
                str(owner.user["id"])
            }

        for _ in range(200):
            if await gone():
                break
            await asyncio.sleep(0.05)
        assert await gone()
