"""A session's access tokens stop working at logout in every service at once (issue 15,
finding 6): the `sid` claim, the revocation list every process keeps, fed by the bus and by
auth's internal list."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from kibitz.kit.jwt import InvalidToken, SigningKey, TokenVerifier
from kibitz.kit.platform import Platform
from kibitz.kit.session_revocations import SessionRevocations
from kibitz.kit.settings import PlatformSettings
from tests.fixtures.stack import Stack, start_stack


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def test_a_revoked_session_s_token_is_refused_even_when_already_verified() -> None:
    key = SigningKey.generate()
    revocations = SessionRevocations()

    async def jwks() -> dict[str, Any]:
        return {"keys": [key.public_jwk()]}

    verifier = TokenVerifier(jwks, revocations)
    session_id = uuid.uuid4()
    token = key.issue_access_token(
        user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="owner", session_id=session_id
    )
    assert jwt.decode(token, options={"verify_signature": False})["sid"] == str(session_id)
    assert (await verifier.verify(token)).session_id == str(session_id)  # now remembered
    revocations.revoke(str(session_id), until=time.time() + 60)
    with pytest.raises(InvalidToken, match="session has ended"):
        await verifier.verify(token)
    # Another session of the same user is untouched.
    other = key.issue_access_token(
        user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="owner", session_id=uuid.uuid4()
    )
    assert await verifier.verify(other)


def test_an_entry_is_kept_only_until_the_session_s_tokens_expire() -> None:
    revocations = SessionRevocations()
    revocations.revoke("gone", until=time.time() - 1)
    revocations.revoke("live", until=time.time() + 60)
    assert not revocations.is_revoked("gone") and revocations.is_revoked("live")


async def _logout(stack: Stack, refresh_token: str) -> None:
    answer = await stack.http.post(
        f"{stack.entry}/auth/logout", json={"refresh_token": refresh_token}
    )
    assert answer.status_code == 204


@pytest.mark.parametrize("bus", ["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def test_logout_revokes_the_access_token_in_every_service(tmp_path: Path, bus: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    bus_url = f"nats://127.0.0.1:4222?prefix={prefix}" if bus == "nats" else "memory"
    modules = ["auth", "users", "tenants", "agents", "chat", "gateway"]
    env = {"KIBITZ_BUS_URL": bus_url}
    # Agents in a process of its own, as `kibitz up` runs it: it hears no in-process events.
    own = ["agents"] if bus == "memory" else []
    async with start_stack(modules, data_dir=tmp_path, env=env, own_processes=own) as stack:
        account = await stack.register()
        routes = {
            "gateway": f"{stack.entry}/users/me",
            "auth": f"{stack.url('auth')}/auth/me",
            "users": f"{stack.url('users')}/users/me",
            "tenants": f"{stack.url('tenants')}/tenants/plan",
            "agents": f"{stack.url('agents')}/agents/my",
            "chat": f"{stack.url('chat')}/chat/chats",
        }
        for name, url in routes.items():
            answer = await stack.http.get(url, headers=account.headers)
            assert answer.status_code == 200, (name, answer.text)
        # A listener elsewhere on the broker (another replica's process): the event reaches it.
        elsewhere = Platform(settings=PlatformSettings(bus_url=bus_url))
        if bus == "nats":
            from kibitz.kit.events import create_bus

            elsewhere.bus = create_bus(bus_url)
            await elsewhere.bus.start()
        listening = asyncio.create_task(elsewhere.keep_revocations_current())
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await _logout(stack, account.refresh_token)

        async def refused_everywhere() -> bool:
            statuses = [
                (await stack.http.get(url, headers=account.headers)).status_code
                for url in routes.values()
            ]
            return statuses == [401] * len(routes)

        # With a broker each process asks auth only every 30 s: this is the event's doing.
        await _eventually(refused_everywhere, timeout=5.0)
        assert time.monotonic() - started < 5.0
        if bus == "nats":
            sid = jwt.decode(account.access_token, options={"verify_signature": False})["sid"]
            await _eventually(_revoked(elsewhere, sid))
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await elsewhere.bus.close()
        # A new login works, and so does another session of the same user.
        again = await stack.http.post(
            f"{stack.entry}/auth/login", json={"email": account.email, "password": account.password}
        )
        assert again.status_code == 200
        fresh = {"Authorization": f"Bearer {again.json()['access_token']}"}
        assert (await stack.http.get(routes["agents"], headers=fresh)).status_code == 200


def _revoked(platform: Platform, sid: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return platform.revocations.is_revoked(sid)

    return check


async def test_a_process_that_starts_later_learns_earlier_revocations_from_auth(
    tmp_path: Path,
) -> None:
    async with start_stack(["auth", "gateway"], data_dir=tmp_path) as stack:
        account = await stack.register()
        await _logout(stack, account.refresh_token)
        sid = jwt.decode(account.access_token, options={"verify_signature": False})["sid"]
        # It heard no event: it asks auth at start.
        later = Platform(
            settings=PlatformSettings(),
            service_urls={"auth": [stack.url("auth")]},
            internal_token=stack.running.platform.internal_token,
        )
        task = asyncio.create_task(later.keep_revocations_current())
        try:
            await _eventually(_revoked(later, sid))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await later.close_clients()
        internal = await stack.http.get(f"{stack.url('auth')}/auth/internal/session-revocations")
        assert internal.status_code == 403  # for kibitz services only


async def test_api_keys_keep_working_beside_revocations(tmp_path: Path) -> None:
    async with start_stack(["auth", "users", "gateway"], data_dir=tmp_path) as stack:
        account = await stack.register()
        created = await stack.http.post(
            f"{stack.entry}/auth/api-keys", json={"name": "ci"}, headers=account.headers
        )
        assert created.status_code == 201, created.text
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        await _logout(stack, account.refresh_token)
        # The key's exchanged tokens belong to no session: logout does not end them.
        me = await stack.http.get(f"{stack.entry}/users/me", headers=key)
        assert me.status_code == 200, me.text
        assert isinstance(me.json(), dict)
