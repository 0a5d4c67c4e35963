"""Personal API keys at the gateway, with the real auth and tenants services: a key acts as its
user on every API route, counts against the same limits, and a revocation reaches every gateway
replica at once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from kibitz.contracts.events import ApiKeyRevoked, MemberRemoved
from kibitz.gateway.module import create_app as create_gateway
from kibitz.kit.events import EventEnvelope
from tests.fixtures.serving import serving
from tests.fixtures.stack import Account, Stack, start_stack

MODULES = ["auth", "tenants", "users", "gateway"]


async def new_key(stack: Stack, account: Account) -> dict[str, Any]:
    response = await stack.http.post(
        f"{stack.entry}/auth/api-keys", json={"name": "script"}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_acts_as_its_user_on_every_service(tmp_path: Path) -> None:
    async with start_stack(MODULES, data_dir=tmp_path) as stack:
        account = await stack.register()
        key = (await new_key(stack, account))["key"]
        me = await stack.http.get(f"{stack.entry}/auth/me", headers=bearer(key))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == account.user["id"]
        profile = await stack.http.get(f"{stack.entry}/users/me", headers=bearer(key))
        assert profile.status_code == 200, profile.text
        assert profile.json()["auth_user_id"] == account.user["id"]
        plan = await stack.http.get(f"{stack.entry}/tenants/plan", headers=bearer(key))
        assert plan.status_code == 200 and plan.json()["tenant_id"] == account.tenant_id


async def test_a_key_counts_against_the_same_plan_limit_as_its_user(tmp_path: Path) -> None:
    async with start_stack(MODULES, data_dir=tmp_path) as stack:
        account = await stack.register()
        key = (await new_key(stack, account))["key"]
        by_token = await stack.http.get(f"{stack.entry}/auth/me", headers=account.headers)
        by_key = await stack.http.get(f"{stack.entry}/auth/me", headers=bearer(key))
        # Reads count per user: the key and its user share one allowance.
        assert by_key.headers["ratelimit-limit"] == by_token.headers["ratelimit-limit"] == "600"
        assert int(by_key.headers["ratelimit-remaining"]) == (
            int(by_token.headers["ratelimit-remaining"]) - 1
        )


async def test_an_unknown_key_is_401(tmp_path: Path) -> None:
    async with start_stack(MODULES, data_dir=tmp_path) as stack:
        response = await stack.http.get(f"{stack.entry}/auth/me", headers=bearer("kbz_" + "A" * 43))
        assert response.status_code == 401
        assert response.json()["type"].endswith("invalid-api-key")


async def test_a_revoked_key_is_refused_at_once_on_every_gateway_replica(tmp_path: Path) -> None:
    # 1 h: only the revocation event can make the second replica forget the key.
    env = {"KIBITZ_GATEWAY_API_KEY_CACHE_SECONDS": "3600"}
    async with start_stack(MODULES, data_dir=tmp_path, env=env) as stack:
        # A second gateway replica sharing the platform's bus, as replicas share a broker.
        second_app = create_gateway(stack.running.platform)
        async with serving(second_app) as second:
            account = await stack.register()
            created = await new_key(stack, account)
            for gateway in (stack.entry, second):
                used = await stack.http.get(f"{gateway}/auth/me", headers=bearer(created["key"]))
                assert used.status_code == 200, used.text

            revoked = await stack.http.delete(
                f"{stack.entry}/auth/api-keys/{created['id']}", headers=account.headers
            )
            assert revoked.status_code == 204
            first_answer = await stack.http.get(
                f"{stack.entry}/auth/me", headers=bearer(created["key"])
            )
            assert first_answer.status_code == 401
            statuses = []
            for _ in range(50):
                answer = await stack.http.get(f"{second}/auth/me", headers=bearer(created["key"]))
                statuses.append(answer.status_code)
                if answer.status_code == 401:
                    break
                await asyncio.sleep(0.02)
            # The event is relayed right after the revocation commits: milliseconds, not the
            # hour the replica would otherwise trust its cache.
            assert statuses[-1] == 401 and len(statuses) <= 10, statuses


async def refused_soon(stack: Stack, gateway: str, key: str) -> list[int]:
    """Ask with the key until it is refused (at most 50 times, 20 ms apart); the statuses."""
    statuses = []
    for _ in range(50):
        answer = await stack.http.get(f"{gateway}/auth/me", headers=bearer(key))
        statuses.append(answer.status_code)
        if answer.status_code == 401:
            break
        await asyncio.sleep(0.02)
    return statuses


async def test_a_removed_members_keys_are_refused_at_once_on_every_gateway_replica(
    tmp_path: Path,
) -> None:
    # 1 h: only the revocations' events can make the replicas forget the keys.
    env = {"KIBITZ_GATEWAY_API_KEY_CACHE_SECONDS": "3600"}
    async with start_stack(MODULES, data_dir=tmp_path, env=env) as stack:
        bus = stack.running.platform.bus
        announced: list[str] = []

        async def heard(envelope: EventEnvelope) -> None:
            announced.append(str(ApiKeyRevoked.model_validate(envelope.payload).key_id))

        listening = await bus.listen([ApiKeyRevoked.name], handler=heard)
        async with serving(create_gateway(stack.running.platform)) as second:
            owner = await stack.register()
            invited = await stack.http.post(
                f"{stack.entry}/tenants/invites", json={"role": "member"}, headers=owner.headers
            )
            assert invited.status_code == 201, invited.text
            member = await stack.register(invite_code=invited.json()["code"])
            assert member.tenant_id == owner.tenant_id
            members_keys = [await new_key(stack, member) for _ in range(2)]
            owners_key = (await new_key(stack, owner))["key"]
            for gateway in (stack.entry, second):
                for key in [k["key"] for k in members_keys] + [owners_key]:
                    used = await stack.http.get(f"{gateway}/auth/me", headers=bearer(key))
                    assert used.status_code == 200, used.text

            # What the tenants service announces when a member is removed.
            removal = MemberRemoved(
                tenant_id=uuid.UUID(owner.tenant_id), user_id=uuid.UUID(member.user["id"])
            )
            await bus.publish(EventEnvelope.wrap(removal))
            for gateway in (stack.entry, second):
                for created in members_keys:
                    statuses = await refused_soon(stack, gateway, created["key"])
                    assert statuses[-1] == 401 and len(statuses) <= 10, statuses
                used = await stack.http.get(f"{gateway}/auth/me", headers=bearer(owners_key))
                assert used.status_code == 200, used.text  # only the removed member's keys
            # The announcements reach this listener after the replicas' own (the same relay).
            for _ in range(100):
                if len(announced) >= len(members_keys):
                    break
                await asyncio.sleep(0.05)
            assert sorted(announced) == sorted(k["id"] for k in members_keys)

            # Delivered again (at least once): nothing more is revoked or announced.
            await bus.publish(EventEnvelope.wrap(removal))
            await asyncio.sleep(0.2)
            assert sorted(announced) == sorted(k["id"] for k in members_keys)
        await listening.cancel()


async def test_keys_never_reach_the_logs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_stack(MODULES, data_dir=tmp_path) as stack:
        account = await stack.register()
        created = await new_key(stack, account)
        key = created["key"]
        assert (
            await stack.http.get(f"{stack.entry}/auth/me", headers=bearer(key))
        ).status_code == 200
        await stack.http.get(f"{stack.entry}/auth/me", headers=bearer(key + "x"))
        await stack.http.delete(
            f"{stack.entry}/auth/api-keys/{created['id']}", headers=account.headers
        )
        assert (
            await stack.http.get(f"{stack.entry}/auth/me", headers=bearer(key))
        ).status_code == 401
    captured = capfd.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "api_key_created" in logged and "api_key_revoked" in logged
    assert key not in logged and key[4:] not in logged
