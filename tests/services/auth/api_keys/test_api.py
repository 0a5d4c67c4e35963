"""API keys in the auth service over real HTTP (tenants too, for invites), SQLite and Postgres."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from kibitz.kit.http import INTERNAL_TOKEN_HEADER
from kibitz.services.auth.api_keys.models import ApiKey
from tests.conftest import DATABASES
from tests.fixtures.stack import Account, Stack, start_stack


@pytest.fixture(scope="module", params=DATABASES)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Auth and tenants (for invites), shared by the module's tests."""
    data_dir = tmp_path_factory.mktemp("api-keys")
    async with start_stack(
        ["auth", "tenants"], data_dir=data_dir, database=str(request.param)
    ) as running:
        yield running


def url(stack: Stack, path: str) -> str:
    return f"{stack.url('auth')}{path}"


async def create_key(stack: Stack, account: Account, name: str = "CI", **extra: Any) -> Any:
    response = await stack.http.post(
        url(stack, "/auth/api-keys"), json={"name": name, **extra}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def exchange(stack: Stack, key: str) -> Any:
    return await stack.http.post(
        url(stack, "/auth/internal/api-keys/exchange"),
        json={"key": key},
        headers={INTERNAL_TOKEN_HEADER: stack.running.platform.internal_token},
    )


async def member_of(stack: Stack, owner: Account, role: str = "member") -> Account:
    invite = await stack.http.post(
        f"{stack.url('tenants')}/tenants/invites", json={"role": role}, headers=owner.headers
    )
    assert invite.status_code == 201, invite.text
    return await stack.register(invite_code=invite.json()["code"])


async def stored_key(stack: Stack, key_id: str) -> ApiKey:
    database = stack.running.apps["auth"].state.database
    async with database.transaction() as session:
        record = (
            await session.execute(select(ApiKey).where(ApiKey.id == uuid.UUID(key_id)))
        ).scalar_one()
    return record


async def test_a_new_key_is_shown_once_and_stored_only_as_its_hash(stack: Stack) -> None:
    owner = await stack.register()
    created = await create_key(stack, owner, "Build server")
    key = created["key"]
    assert key.startswith("kbz_") and len(key) >= len("kbz_") + 43
    assert created["prefix"] == key[:12] and created["name"] == "Build server"

    record = await stored_key(stack, created["id"])
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [str(getattr(record, column.key)) for column in ApiKey.__table__.columns]
    assert not any(key in value or key[4:] in value for value in stored)

    listed = await stack.http.get(url(stack, "/auth/api-keys"), headers=owner.headers)
    assert listed.status_code == 200
    assert key not in listed.text
    [item] = listed.json()["items"]
    assert item["id"] == created["id"] and item["prefix"] == created["prefix"]
    assert item["last_used_at"] is None and item["user_email"] == owner.email
    assert listed.json()["next_cursor"] is None


async def test_a_key_exchanges_for_its_users_access_token_until_revoked(stack: Stack) -> None:
    owner = await stack.register()
    created = await create_key(stack, owner)

    answer = await exchange(stack, created["key"])
    assert answer.status_code == 200, answer.text
    identity = answer.json()
    assert identity["user_id"] == owner.user["id"] and identity["tenant_id"] == owner.tenant_id
    assert identity["role"] == "owner" and identity["key_id"] == created["id"]
    claims = jwt.decode(identity["access_token"], options={"verify_signature": False})
    assert claims["sub"] == owner.user["id"] and claims["akid"] == created["id"]
    me = await stack.http.get(
        url(stack, "/auth/me"), headers={"Authorization": f"Bearer {identity['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["id"] == owner.user["id"]
    listed = await stack.http.get(url(stack, "/auth/api-keys"), headers=owner.headers)
    assert listed.json()["items"][0]["last_used_at"] is not None

    revoked = await stack.http.delete(
        url(stack, f"/auth/api-keys/{created['id']}"), headers=owner.headers
    )
    assert revoked.status_code == 204
    refused = await exchange(stack, created["key"])
    assert refused.status_code == 401 and refused.json()["type"].endswith("invalid-api-key")
    listed = await stack.http.get(url(stack, "/auth/api-keys"), headers=owner.headers)
    assert listed.json()["items"] == []
    again = await stack.http.delete(
        url(stack, f"/auth/api-keys/{created['id']}"), headers=owner.headers
    )
    assert again.status_code == 404


async def test_unknown_and_expired_keys_are_refused_alike(stack: Stack) -> None:
    owner = await stack.register()
    soon = datetime.now(UTC) + timedelta(seconds=1)
    created = await create_key(stack, owner, expires_at=soon.isoformat())
    database = stack.running.apps["auth"].state.database
    async with database.transaction() as session:
        record = await session.get(ApiKey, uuid.UUID(created["id"]))
        assert record is not None
        record.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    for key in (created["key"], "kbz_" + "x" * 43, "not-a-key"):
        refused = await exchange(stack, key)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == "The API key is invalid, expired or revoked."


async def test_an_expiry_in_the_past_or_a_blank_name_is_refused(stack: Stack) -> None:
    owner = await stack.register()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = (({"name": "x", "expires_at": past}, "expires_at"), ({"name": "  "}, "name"))
    for body, field in cases:
        response = await stack.http.post(
            url(stack, "/auth/api-keys"), json=body, headers=owner.headers
        )
        assert response.status_code == 422, response.text
        assert field in response.text


async def test_the_exchange_is_for_kibitz_services_only(stack: Stack) -> None:
    owner = await stack.register()
    created = await create_key(stack, owner)
    response = await stack.http.post(
        url(stack, "/auth/internal/api-keys/exchange"),
        json={"key": created["key"]},
        headers=owner.headers,
    )
    assert response.status_code == 403


async def test_a_key_cannot_create_another_key(stack: Stack) -> None:
    owner = await stack.register()
    created = await create_key(stack, owner)
    token = (await exchange(stack, created["key"])).json()["access_token"]
    response = await stack.http.post(
        url(stack, "/auth/api-keys"),
        json={"name": "escalation"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("api-key-needs-session")


async def test_members_manage_their_own_keys_and_owners_the_tenants(stack: Stack) -> None:
    owner = await stack.register()
    member = await member_of(stack, owner)
    colleague = await member_of(stack, owner)
    stranger = await stack.register()
    owner_key = await create_key(stack, owner, "owner's")
    member_key = await create_key(stack, member, "member's")
    colleague_key = await create_key(stack, colleague, "colleague's")
    stranger_key = await create_key(stack, stranger, "stranger's")

    mine = await stack.http.get(url(stack, "/auth/api-keys"), headers=member.headers)
    assert [item["id"] for item in mine.json()["items"]] == [member_key["id"]]
    forbidden = await stack.http.get(
        url(stack, "/auth/api-keys?scope=tenant"), headers=member.headers
    )
    assert forbidden.status_code == 403
    for key in (colleague_key, owner_key, stranger_key):
        refused = await stack.http.delete(
            url(stack, f"/auth/api-keys/{key['id']}"), headers=member.headers
        )
        assert refused.status_code == 404

    tenant = await stack.http.get(url(stack, "/auth/api-keys?scope=tenant"), headers=owner.headers)
    listed = {item["id"]: item["user_email"] for item in tenant.json()["items"]}
    assert listed == {
        owner_key["id"]: owner.email,
        member_key["id"]: member.email,
        colleague_key["id"]: colleague.email,
    }
    assert (
        await stack.http.delete(
            url(stack, f"/auth/api-keys/{member_key['id']}"), headers=owner.headers
        )
    ).status_code == 204
    assert (await exchange(stack, member_key["key"])).status_code == 401
    assert (
        await stack.http.delete(
            url(stack, f"/auth/api-keys/{stranger_key['id']}"), headers=owner.headers
        )
    ).status_code == 404
    assert (await exchange(stack, stranger_key["key"])).status_code == 200


async def test_keys_are_listed_newest_first_a_page_at_a_time(stack: Stack) -> None:
    owner = await stack.register()
    ids = [(await create_key(stack, owner, f"key {n}"))["id"] for n in range(3)]
    first = await stack.http.get(url(stack, "/auth/api-keys?limit=2"), headers=owner.headers)
    page = first.json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    second = await stack.http.get(
        url(stack, f"/auth/api-keys?limit=2&cursor={page['next_cursor']}"), headers=owner.headers
    )
    assert [item["id"] for item in second.json()["items"]] == ids[:1]
    assert second.json()["next_cursor"] is None
