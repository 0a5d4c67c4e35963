"""The users service's HTTP contract: the profile, preferences, subscription and isolation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from kibitz.kit.http import INTERNAL_TOKEN_HEADER, acting_for
from kibitz.services.users.models import Profile
from tests.fixtures.stack import Account, Stack


async def me(stack: Stack, account: Account) -> dict[str, Any]:
    response = await stack.http.get(f"{stack.url('users')}/users/me", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def patch(stack: Stack, account: Account, body: Any) -> Any:
    return await stack.http.patch(
        f"{stack.url('users')}/users/me", headers=account.headers, json=body
    )


async def create_agent(stack: Stack, account: Account, name: str = "Helper") -> str:
    response = await stack.http.post(
        f"{stack.url('agents')}/agents/create",
        headers=account.headers,
        json={"name": name, "llm_provider": "echo", "model": "echo"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def profile_rows(stack: Stack, account: Account) -> int:
    database = stack.running.apps["users"].state.database
    async with database.transaction() as session:
        query = select(func.count()).where(Profile.auth_user_id == uuid.UUID(account.user["id"]))
        return int((await session.execute(query)).scalar_one())


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert any(error["field"].endswith(field) for error in body["errors"]), body
    return body


async def test_the_profile_exists_as_soon_as_registration_returns(stack: Stack) -> None:
    account = await stack.register(full_name="Ada Lovelace", tenant_name="Engines")
    body = await me(stack, account)
    assert body["auth_user_id"] == account.user["id"]
    assert body["id"] != account.user["id"]
    assert body["email"] == account.email
    assert body["full_name"] == "Ada Lovelace"
    assert body["avatar_url"] is None
    assert body["preferences"] == {}
    assert body["subscription"] == {
        "tenant_id": account.tenant_id,
        "tenant_name": "Engines",
        "plan": "basic",
        "limits": {
            "requests_per_minute": 60,
            "messages_per_day": 100,
            "agents": 3,
            "tokens_per_month": 100_000,
            "models": ["echo", "small"],
            "knowledge_documents": 0,
            "knowledge_bytes": 0,
        },
    }


async def test_the_registration_event_and_the_first_read_make_one_profile(stack: Stack) -> None:
    accounts = [await stack.register() for _ in range(3)]
    await asyncio.gather(*(me(stack, account) for account in accounts))
    inbox = stack.running.apps["users"].state.inbox
    for _ in range(200):
        if await inbox.handled_count("users") >= 3:
            break
        await asyncio.sleep(0.05)
    for account in accounts:
        assert await profile_rows(stack, account) == 1


async def test_a_registration_makes_the_profile_without_any_read(stack: Stack) -> None:
    account = await stack.register(full_name="Grace Hopper")
    for _ in range(200):
        if await profile_rows(stack, account) == 1:
            break
        await asyncio.sleep(0.05)
    assert await profile_rows(stack, account) == 1
    assert (await me(stack, account))["full_name"] == "Grace Hopper"


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_the_profile_needs_a_bearer_token(stack: Stack, method: str) -> None:
    url = f"{stack.url('users')}/users/me"
    assert_problem(await stack.http.request(method, url, json={}), 401)
    bad = await stack.http.request(method, url, json={}, headers={"Authorization": "Bearer x.y.z"})
    assert_problem(bad, 401)


async def test_patch_changes_the_name_and_avatar(stack: Stack) -> None:
    account = await stack.register(full_name="Old Name")
    response = await patch(
        stack, account, {"full_name": "  New Name ", "avatar_url": "https://cdn.example.com/a.png"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["full_name"] == "New Name"
    assert body["avatar_url"] == "https://cdn.example.com/a.png"
    assert (await me(stack, account))["avatar_url"] == "https://cdn.example.com/a.png"
    cleared = (await patch(stack, account, {"avatar_url": None, "full_name": None})).json()
    assert cleared["avatar_url"] is None and cleared["full_name"] is None


async def test_an_empty_patch_changes_nothing(stack: Stack) -> None:
    account = await stack.register(full_name="Same")
    response = await patch(stack, account, {})
    assert response.status_code == 200
    assert response.json()["full_name"] == "Same"


async def test_preferences_are_merged_and_a_null_key_is_removed(stack: Stack) -> None:
    account = await stack.register()
    agent = await create_agent(stack, account)
    first = await patch(
        stack, account, {"preferences": {"theme": "dark", "default_agent_id": agent}}
    )
    assert first.json()["preferences"] == {"theme": "dark", "default_agent_id": agent}
    second = await patch(
        stack, account, {"preferences": {"language": "pt-BR", "selected_agent_ids": [agent]}}
    )
    assert second.json()["preferences"] == {
        "theme": "dark",
        "default_agent_id": agent,
        "language": "pt-BR",
        "selected_agent_ids": [agent],
    }
    third = await patch(stack, account, {"preferences": {"theme": None}})
    assert "theme" not in third.json()["preferences"]
    assert (await me(stack, account))["preferences"]["language"] == "pt-BR"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"full_name": "n" * 201}, "full_name"),
        ({"full_name": 42}, "full_name"),
        ({"avatar_url": "http://cdn.example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "https://user:secret@cdn.example.com/a.png"}, "avatar_url"),
        ({"avatar_url": "https://cdn.example.com/" + "a" * 2048}, "avatar_url"),
        ({"avatar_url": "not a url"}, "avatar_url"),
        ({"preferences": "dark"}, "preferences"),
        ({"preferences": {"colour": "red"}}, "colour"),
        ({"preferences": {"theme": "blue"}}, "theme"),
        ({"preferences": {"default_agent_id": "agent-1"}}, "default_agent_id"),
        ({"preferences": {"selected_agent_ids": "all"}}, "selected_agent_ids"),
        ({"preferences": {"selected_agent_ids": [str(uuid.uuid4())] * 2}}, "selected_agent_ids"),
        (
            {"preferences": {"selected_agent_ids": [str(uuid.uuid4()) for _ in range(101)]}},
            "selected_agent_ids",
        ),
        ({"preferences": {"language": "english!"}}, "language"),
        ({"preferences": {"language": "e"}}, "language"),
        ({"email": "new@example.com"}, "email"),
        ({"subscription": {"plan": "gold"}}, "subscription"),
    ],
)
async def test_patch_refuses_bad_input_per_field(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    account = await stack.register(full_name="Kept")
    assert_problem(await patch(stack, account, body), 422, field)
    after = await me(stack, account)
    assert after["full_name"] == "Kept" and after["preferences"] == {}


async def test_a_body_larger_than_a_profile_patch_is_413(stack: Stack) -> None:
    account = await stack.register()
    response = await patch(stack, account, {"full_name": "x" * 20_000})
    assert_problem(response, 413)


async def test_a_plan_change_shows_in_the_subscription_on_the_next_read(stack: Stack) -> None:
    owner = await stack.register()
    assert (await me(stack, owner))["subscription"]["plan"] == "basic"
    upgraded = await stack.http.post(
        f"{stack.url('tenants')}/tenants/subscribe", headers=owner.headers, json={"plan": "gold"}
    )
    assert upgraded.status_code == 200
    for _ in range(200):
        if (await me(stack, owner))["subscription"]["plan"] == "gold":
            break
        await asyncio.sleep(0.05)
    subscription = (await me(stack, owner))["subscription"]
    assert subscription["plan"] == "gold"
    assert subscription["limits"]["requests_per_minute"] == 1200


async def test_one_user_never_sees_or_changes_anothers_profile(stack: Stack) -> None:
    ada = await stack.register(full_name="Ada")
    bob = await stack.register(full_name="Bob")
    await patch(stack, ada, {"preferences": {"theme": "dark"}})
    await patch(stack, bob, {"full_name": "Robert", "preferences": {"theme": "light"}})
    ada_now = await me(stack, ada)
    assert ada_now["full_name"] == "Ada"
    assert ada_now["preferences"] == {"theme": "dark"}
    assert ada_now["subscription"]["tenant_id"] == ada.tenant_id != bob.tenant_id
    assert (await me(stack, bob))["email"] == bob.email


async def test_preferences_name_only_the_callers_own_agents(stack: Stack) -> None:
    account = await stack.register()
    own = await create_agent(stack, account)
    colleague = await stack.register()  # another tenant
    theirs = await create_agent(stack, colleague)
    unknown = str(uuid.uuid4())
    for preferences, field in [
        ({"default_agent_id": theirs}, "default_agent_id"),
        ({"default_agent_id": unknown}, "default_agent_id"),
        ({"selected_agent_ids": [own, theirs]}, "selected_agent_ids"),
    ]:
        response = await patch(stack, account, {"preferences": preferences})
        problem = assert_problem(response, 422, f"preferences.{field}")
        assert problem["type"].endswith("/unknown-agent")
        assert own not in problem["detail"]
    accepted = await patch(
        stack, account, {"preferences": {"default_agent_id": own, "selected_agent_ids": [own]}}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["preferences"]["selected_agent_ids"] == [own]


async def test_a_service_reads_a_users_preferences_only_with_its_credential(
    stack: Stack,
) -> None:
    account = await stack.register()
    other = await stack.register()
    assert (await patch(stack, account, {"preferences": {"propose_titles": True}})).status_code == (
        200
    )
    url = f"{stack.url('users')}/users/internal/preferences"
    acting = acting_for(
        tenant_id=uuid.UUID(account.tenant_id), user_id=uuid.UUID(account.user["id"])
    )
    credential = {INTERNAL_TOKEN_HEADER: stack.running.platform.internal_token}

    answer = await stack.http.get(url, headers={**credential, **acting})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"preferences": {"propose_titles": True}}
    # Without the service credential, naming a user is not enough (their own token neither).
    assert_problem(await stack.http.get(url, headers=acting), 403)
    assert_problem(await stack.http.get(url, headers={**account.headers, **acting}), 403)
    # Another user's are theirs: none set.
    theirs = acting_for(tenant_id=uuid.UUID(other.tenant_id), user_id=uuid.UUID(other.user["id"]))
    answer = await stack.http.get(url, headers={**credential, **theirs})
    assert answer.json() == {"preferences": {}}
