"""Leaving, through the gateway: a removed member's token and API key are refused at once, a
deleted account's chats, profile and membership are gone, and nobody reaches another tenant's
members."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kibitz.runtime.databases import database_url_of
from tests.fixtures.stack import DEFAULT_PASSWORD, Account
from tests.services.chat.world import SERVICE_MODULES, Member, World, chat_world
from tests.services.knowledge.conftest import KNOWLEDGE_ENV

pytestmark = pytest.mark.slow


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    # Every service that keeps something of a person, so each one's erasure is seen; agents and
    # knowledge apart from the bus, as `kibitz up` runs them.
    modules = [*SERVICE_MODULES, "users", "knowledge"]
    async with chat_world(
        tmp_path,
        gateway=True,
        modules=modules,
        env=KNOWLEDGE_ENV,
        own_processes=["agents", "knowledge"],
    ) as running:
        yield running


async def _invite(world: World, owner: Member, role: str = "member") -> str:
    response = await world.http.post(
        world.url("/tenants/invites"), headers=owner.headers, json={"role": role}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


async def _api_key(world: World, account: Account) -> dict[str, str]:
    response = await world.http.post(
        world.url("/auth/api-keys"), headers=account.headers, json={"name": "script"}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


# What each service keeps of a person: (service, a count of their rows).
A_PERSONS_ROWS = [
    ("chat", "SELECT count(*) FROM chats WHERE user_id = :user_id"),
    ("chat", "SELECT count(*) FROM messages WHERE user_id = :user_id"),
    ("users", "SELECT count(*) FROM profiles WHERE auth_user_id = :user_id"),
    ("tenants", "SELECT count(*) FROM memberships WHERE user_id = :user_id"),
    ("agents", "SELECT count(*) FROM agents WHERE user_id = :user_id"),
    ("knowledge", "SELECT count(*) FROM collections WHERE user_id = :user_id"),
    ("knowledge", "SELECT count(*) FROM documents WHERE user_id = :user_id"),
]


async def _rows(world: World, service: str, query: str, **params: Any) -> int:
    url = world.stack.database_urls.get(service) or database_url_of(
        service, world.stack.running.platform.settings
    )
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(query), params)).scalar_one())
    finally:
        await engine.dispose()


async def _private_collection(world: World, member: Member) -> str:
    """A private collection of the member's with one document in it."""
    created = await world.http.post(
        world.url("/knowledge/collections"), headers=member.headers, json={"name": "Mine"}
    )
    assert created.status_code == 201, created.text
    collection_id = str(created.json()["id"])
    added = await world.http.post(
        world.url(f"/knowledge/collections/{collection_id}/documents"),
        headers=member.headers,
        json={"title": "Diary", "text": "What I keep to myself."},
    )
    assert added.status_code == 202, added.text
    return collection_id


async def _eventually(check: Any) -> None:
    # The consumers run on the bus: a few hundred ms at most; 10 s is a broken consumer.
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


async def test_a_removed_members_token_and_api_key_are_refused_at_once(world: World) -> None:
    owner = await world.member(tenant_name="Acme")
    member = await world.member(invite_code=await _invite(world, owner))
    key = await _api_key(world, member.account)
    assert (
        await world.http.get(world.url("/chat/chats"), headers=member.headers)
    ).status_code == 200
    assert (await world.http.get(world.url("/agents/my"), headers=key)).status_code == 200

    removed = await world.http.delete(
        world.url(f"/tenants/members/{member.account.user['id']}"), headers=owner.headers
    )
    assert removed.status_code == 204

    async def refused() -> bool:
        token = await world.http.get(world.url("/chat/chats"), headers=member.headers)
        by_key = await world.http.get(world.url("/agents/my"), headers=key)
        return token.status_code == 401 and by_key.status_code == 401

    await _eventually(refused)
    login = await world.http.post(
        world.url("/auth/login"),
        json={"email": member.account.email, "password": DEFAULT_PASSWORD},
    )
    assert login.status_code == 401
    assert (
        await world.http.get(world.url("/chat/chats"), headers=owner.headers)
    ).status_code == 200


async def test_a_deleted_accounts_data_is_gone(world: World) -> None:
    owner = await world.member(tenant_name="Acme")
    await world.subscribe(owner, "premium")  # knowledge is a feature of the plan
    member = await world.member(invite_code=await _invite(world, owner))
    owners_collection = await _private_collection(world, owner)
    await _private_collection(world, member)
    sent = await world.send(member, "Remember this [sim:tokens=3]")
    assert sent.status_code == 201, sent.text
    body = sent.json()
    await world.wait_finished(member, body["chat_id"], body["agent_message"]["id"])
    user_id = uuid.UUID(str(member.account.user["id"]))
    sqlite = not world.stack.database_urls
    params = {"user_id": user_id.hex if sqlite else user_id}

    async def counts() -> list[int]:
        return [await _rows(world, service, query, **params) for service, query in A_PERSONS_ROWS]

    # Through the gateway the profile answers, and every service holds something of theirs.
    assert (await world.http.get(world.url("/users/me"), headers=member.headers)).status_code == 200
    assert all(await counts()), await counts()

    wrong = await world.http.request(
        "DELETE", world.url("/auth/account"), headers=member.headers, json={"password": "nope"}
    )
    assert wrong.status_code == 403
    # The only owner of a tenant others belong to must first let them go.
    kept = await world.http.request(
        "DELETE",
        world.url("/auth/account"),
        headers=owner.headers,
        json={"password": DEFAULT_PASSWORD},
    )
    assert kept.status_code == 409
    assert kept.json()["type"].endswith("last-owner")

    deleted = await world.http.request(
        "DELETE",
        world.url("/auth/account"),
        headers=member.headers,
        json={"password": DEFAULT_PASSWORD},
    )
    assert deleted.status_code == 204, deleted.text

    async def signed_out() -> bool:
        me = await world.http.get(world.url("/users/me"), headers=member.headers)
        return me.status_code == 401

    await _eventually(signed_out)

    async def erased() -> bool:
        return not any(await counts())

    await _eventually(erased)
    members = await world.http.get(world.url("/tenants/members"), headers=owner.headers)
    assert [m["user_id"] for m in members.json()["items"]] == [str(owner.account.user["id"])]
    # Everyone else's stays.
    agents = await world.http.get(world.url("/agents/my"), headers=owner.headers)
    assert [a["id"] for a in agents.json()["items"]] == [owner.agent_id]
    collections = await world.http.get(world.url("/knowledge/collections"), headers=owner.headers)
    assert [c["id"] for c in collections.json()["items"]] == [owners_collection]
    # Alone now, the owner may leave too.
    alone = await world.http.request(
        "DELETE",
        world.url("/auth/account"),
        headers=owner.headers,
        json={"password": DEFAULT_PASSWORD},
    )
    assert alone.status_code == 204


async def test_another_tenants_member_is_404(world: World) -> None:
    owner = await world.member(tenant_name="Acme")
    stranger = await world.member(tenant_name="Elsewhere")
    response = await world.http.delete(
        world.url(f"/tenants/members/{stranger.account.user['id']}"), headers=owner.headers
    )
    assert response.status_code == 404
    still = await world.http.get(world.url("/chat/chats"), headers=stranger.headers)
    assert still.status_code == 200
