"""The tenants service's HTTP contract: public routes, internal routes, roles and isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from kibitz.contracts.events import PlanChanged
from kibitz.kit.events import EventEnvelope
from kibitz.services.tenants.models import Invite
from kibitz.services.tenants.service import hash_code
from tests.fixtures.stack import Account, Stack
from tests.services.tenants.conftest import Tenants

PUBLIC_ROUTES = [
    ("GET", "/tenants/plan"),
    ("GET", "/tenants/plans"),
    ("POST", "/tenants/subscribe"),
    ("GET", "/tenants/usage"),
    ("GET", "/tenants/members"),
    ("POST", "/tenants/invites"),
]


async def invite(tenants: Tenants, account: Account, role: str = "member") -> str:
    response = await tenants.post("/tenants/invites", account, json={"role": role})
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


async def team(stack: Stack, tenants: Tenants) -> tuple[Account, Account, Account]:
    """An owner, an admin and a member of one new tenant."""
    owner = await stack.register(tenant_name="Acme")
    admin = await stack.register(invite_code=await invite(tenants, owner, "admin"))
    member = await stack.register(invite_code=await invite(tenants, owner))
    return owner, admin, member


def assert_problem(response: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    if field is not None:
        assert any(error["field"].endswith(field) for error in body["errors"]), body
    return body


# -- public routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES)
async def test_every_public_route_needs_a_bearer_token(
    tenants: Tenants, method: str, path: str
) -> None:
    response = await tenants.http.request(method, tenants.base + path, json={"plan": "gold"})
    assert_problem(response, 401)
    forged = await tenants.http.request(
        method, tenants.base + path, headers={"Authorization": "Bearer not-a-token"}
    )
    assert_problem(forged, 401)


async def test_a_new_user_owns_a_new_tenant_on_the_default_plan(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register(tenant_name="Acme Research")
    response = await tenants.get("/tenants/plan", owner)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == owner.tenant_id
    assert body["tenant_name"] == "Acme Research"
    assert body["plan"] == "basic"
    assert body["limits"] == {
        "requests_per_minute": 60,
        "messages_per_day": 100,
        "agents": 3,
        "tokens_per_month": 100_000,
        "models": ["echo", "small"],
        "knowledge_documents": 0,
        "knowledge_bytes": 0,
    }
    assert body["features"] == []
    assert body["usage"]["messages"]["used"] == 0
    assert body["usage"]["messages"]["limit"] == 100
    assert body["usage"]["tokens"]["limit"] == 100_000
    assert owner.user["role"] == "owner"


async def test_a_tenant_without_a_name_gets_one_from_the_email(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register(f"grace-{uuid.uuid4().hex[:6]}@example.com")
    body = (await tenants.get("/tenants/plan", owner)).json()
    assert body["tenant_name"].startswith("grace-")


async def test_plans_lists_the_catalogue_cheapest_first(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    response = await tenants.get("/tenants/plans", owner)
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["id"] for item in items] == ["basic", "premium", "gold"]
    gold = items[2]
    assert gold["limits"]["requests_per_minute"] == 1200
    assert gold["limits"]["models"] == ["*"]
    assert gold["features"] == ["knowledge", "multi_agent"]
    assert items[1]["features"] == ["knowledge"]
    assert items[1]["name"] == "Premium"


async def test_usage_reports_this_periods_counters(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    await tenants.reserve(owner.tenant_id, key="u-1", amount=3)
    response = await tenants.get("/tenants/usage", owner)
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == owner.tenant_id
    assert body["messages"]["used"] == 3
    assert body["messages"]["remaining"] == 97
    assert body["messages"]["period"] == datetime.now(UTC).strftime("%Y-%m-%d")
    assert body["tokens"]["period"] == datetime.now(UTC).strftime("%Y-%m")
    assert body["tokens"]["resets_at"].endswith("Z")


async def test_an_upgrade_takes_effect_at_once_and_publishes_plan_changed(
    stack: Stack, tenants: Tenants
) -> None:
    seen: list[EventEnvelope] = []

    async def observe(envelope: EventEnvelope) -> None:
        seen.append(envelope)

    subscription = await stack.running.platform.bus.subscribe(
        [PlanChanged.name], group=f"observer-{uuid.uuid4().hex[:6]}", handler=observe
    )
    try:
        owner = await stack.register()
        response = await tenants.post("/tenants/subscribe", owner, json={"plan": "premium"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["plan"] == "premium"
        assert body["limits"]["requests_per_minute"] == 300
        assert body["features"] == ["knowledge"]
        assert body["usage"]["messages"]["limit"] == 2000
        internal = await tenants.internal("GET", f"/tenants/{owner.tenant_id}/plan")
        assert internal.json()["plan"] == "premium"
        for _ in range(100):
            if any(e.payload["tenant_id"] == owner.tenant_id for e in seen):
                break
            await asyncio.sleep(0.05)
        mine = [e for e in seen if e.payload["tenant_id"] == owner.tenant_id]
        assert len(mine) == 1
        assert mine[0].payload["plan"] == "premium"
        assert mine[0].payload["limits"]["messages_per_day"] == 2000
        assert mine[0].payload["features"] == ["knowledge"]
    finally:
        await subscription.cancel()


async def test_subscribing_to_the_current_plan_changes_nothing(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    response = await tenants.post("/tenants/subscribe", owner, json={"plan": "basic"})
    assert response.status_code == 200
    assert response.json()["plan"] == "basic"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "plan"),
        ({"plan": ""}, "plan"),
        ({"plan": 5}, "plan"),
        ({"plan": None}, "plan"),
        ({"plan": "x" * 51}, "plan"),
        ({"plan": "Gold!"}, "plan"),
        ({"plan": "platinum"}, "plan"),
        ({"plan": "gold", "price": 0}, "price"),
    ],
)
async def test_subscribe_refuses_bad_input(
    stack: Stack, tenants: Tenants, body: dict[str, Any], field: str
) -> None:
    owner = await stack.register()
    assert_problem(await tenants.post("/tenants/subscribe", owner, json=body), 422, field=field)
    assert (await tenants.get("/tenants/plan", owner)).json()["plan"] == "basic"


async def test_subscribe_refuses_a_body_that_is_not_json(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    response = await tenants.post(
        "/tenants/subscribe",
        owner,
        content=b"plan=gold",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


async def test_an_admin_may_subscribe_and_invite_but_a_member_may_not(
    stack: Stack, tenants: Tenants
) -> None:
    _, admin, member = await team(stack, tenants)
    assert admin.user["role"] == "admin" and member.user["role"] == "member"
    forbidden = await tenants.post("/tenants/subscribe", member, json={"plan": "gold"})
    assert_problem(forbidden, 403)
    assert_problem(await tenants.post("/tenants/invites", member), 403)
    assert (await tenants.get("/tenants/plan", member)).json()["plan"] == "basic"
    upgraded = await tenants.post("/tenants/subscribe", admin, json={"plan": "gold"})
    assert upgraded.status_code == 200
    assert (await tenants.post("/tenants/invites", admin)).status_code == 201
    # Every member reads the tenant's plan, whoever changed it.
    assert (await tenants.get("/tenants/plan", member)).json()["plan"] == "gold"


async def test_a_downgrade_below_current_usage_is_refused_with_409(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    assert (
        await tenants.post("/tenants/subscribe", owner, json={"plan": "gold"})
    ).status_code == 200
    granted = await tenants.reserve(owner.tenant_id, key="big", amount=150)
    assert granted.status_code == 200
    refused = await tenants.post("/tenants/subscribe", owner, json={"plan": "basic"})
    body = assert_problem(refused, 409)
    assert body["plan"] == "basic"
    assert body["exceeded"][0]["limit"] == "messages_per_day"
    assert body["exceeded"][0]["used"] == 150
    assert (await tenants.get("/tenants/plan", owner)).json()["plan"] == "gold"
    fits = await tenants.post("/tenants/subscribe", owner, json={"plan": "premium"})
    assert fits.status_code == 200
    assert fits.json()["plan"] == "premium"


async def test_members_lists_the_tenant_with_roles_and_pages(
    stack: Stack, tenants: Tenants
) -> None:
    owner, admin, member = await team(stack, tenants)
    response = await tenants.get("/tenants/members", member)
    assert response.status_code == 200
    items = response.json()["items"]
    assert {(item["email"], item["role"]) for item in items} == {
        (owner.email, "owner"),
        (admin.email, "admin"),
        (member.email, "member"),
    }
    first = (await tenants.get("/tenants/members", owner, params={"limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await tenants.get(
        "/tenants/members", owner, params={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert len(rest.json()["items"]) == 1
    assert rest.json()["next_cursor"] is None
    listed = [i["user_id"] for i in first["items"]] + [i["user_id"] for i in rest.json()["items"]]
    assert sorted(listed) == sorted(i["user_id"] for i in items)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"cursor": "x" * 65}],
)
async def test_members_refuses_bad_paging(
    stack: Stack, tenants: Tenants, params: dict[str, Any]
) -> None:
    owner = await stack.register()
    assert_problem(await tenants.get("/tenants/members", owner, params=params), 422)


async def test_an_invite_is_single_use_and_has_an_expiry(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    response = await tenants.post("/tenants/invites", owner)
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "member"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)
    second = (await tenants.post("/tenants/invites", owner)).json()
    assert second["code"] != body["code"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "owner"}, "role"),
        ({"role": "root"}, "role"),
        ({"role": 1}, "role"),
        ({"role": "member", "uses": 5}, "uses"),
    ],
)
async def test_invites_refuse_bad_input(
    stack: Stack, tenants: Tenants, body: dict[str, Any], field: str
) -> None:
    owner = await stack.register()
    assert_problem(await tenants.post("/tenants/invites", owner, json=body), 422, field=field)


# -- isolation -------------------------------------------------------------------------------


async def test_one_tenant_never_sees_or_changes_anothers_plan_members_or_invites(
    stack: Stack, tenants: Tenants
) -> None:
    owner_a, _, member_a = await team(stack, tenants)
    owner_b = await stack.register(tenant_name="Other Co")
    await tenants.reserve(owner_a.tenant_id, key="a-usage", amount=7)
    plan_b = (await tenants.get("/tenants/plan", owner_b)).json()
    assert plan_b["tenant_id"] == owner_b.tenant_id != owner_a.tenant_id
    assert plan_b["usage"]["messages"]["used"] == 0
    members_b = (await tenants.get("/tenants/members", owner_b)).json()["items"]
    assert [m["email"] for m in members_b] == [owner_b.email]
    assert (await tenants.post("/tenants/subscribe", owner_b, json={"plan": "gold"})).is_success
    assert (await tenants.get("/tenants/plan", owner_a)).json()["plan"] == "basic"
    # B's invite joins B, never A.
    joined = await stack.register(invite_code=await invite(tenants, owner_b))
    assert joined.tenant_id == owner_b.tenant_id
    members_a = (await tenants.get("/tenants/members", member_a)).json()["items"]
    assert joined.email not in {m["email"] for m in members_a}
    # A member's cursor pointing into B's member ids still lists only A's members.
    cursor = str(uuid.UUID(int=0))
    paged = (await tenants.get("/tenants/members", owner_a, params={"cursor": cursor})).json()
    assert owner_b.email not in {m["email"] for m in paged["items"]}


# -- internal routes -------------------------------------------------------------------------


# Fixed, not random: test ids must be the same in every pytest-xdist worker's collection.
SOME_ID = uuid.UUID("0193a0f4-2b6c-7d5e-8f00-000000000001")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/tenants/internal/tenants"),
        ("GET", f"/tenants/internal/tenants/{SOME_ID}/plan"),
        ("POST", "/tenants/internal/usage/reserve"),
        ("POST", "/tenants/internal/usage/reserve-batch"),
        ("POST", "/tenants/internal/usage/record"),
        ("DELETE", f"/tenants/internal/memberships/{SOME_ID}"),
    ],
)
async def test_internal_routes_refuse_callers_without_the_service_credential(
    stack: Stack, tenants: Tenants, method: str, path: str
) -> None:
    owner = await stack.register()
    assert_problem(await tenants.http.request(method, tenants.base + path, json={}), 403)
    # A user's token is not a service credential.
    as_user = await tenants.http.request(
        method, tenants.base + path, json={}, headers=owner.headers
    )
    assert_problem(as_user, 403)
    wrong = await tenants.http.request(
        method, tenants.base + path, json={}, headers={"x-kibitz-service-token": "guess"}
    )
    assert_problem(wrong, 403)


async def test_creating_a_tenant_is_idempotent_per_user(tenants: Tenants) -> None:
    body = {"user_id": str(uuid.uuid4()), "email": "ada@example.com", "tenant_name": "Engines"}
    first = await tenants.internal("POST", "/tenants", json=body)
    assert first.status_code == 201
    answer = first.json()
    assert answer["role"] == "owner" and answer["plan"] == "basic"
    assert answer["tenant_name"] == "Engines"
    again = await tenants.internal("POST", "/tenants", json=body)
    assert again.status_code == 201
    assert again.json()["tenant_id"] == answer["tenant_id"]


async def test_undoing_a_join_removes_the_tenant_made_for_the_user(tenants: Tenants) -> None:
    user_id = str(uuid.uuid4())
    body = {"user_id": user_id, "email": "lost-race@example.com"}
    tenant_id = (await tenants.internal("POST", "/tenants", json=body)).json()["tenant_id"]
    undone = await tenants.internal("DELETE", f"/memberships/{user_id}")
    assert undone.status_code == 204
    assert_problem(await tenants.internal("GET", f"/tenants/{tenant_id}/plan"), 404)
    # Undoing again, or for a user who never joined, changes nothing.
    assert (await tenants.internal("DELETE", f"/memberships/{user_id}")).status_code == 204
    assert (await tenants.internal("DELETE", f"/memberships/{uuid.uuid4()}")).status_code == 204
    assert_problem(await tenants.internal("DELETE", "/memberships/not-a-uuid"), 422)


async def test_undoing_a_join_by_invite_keeps_the_tenant_and_frees_the_invite(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    code = await invite(tenants, owner)
    user_id = str(uuid.uuid4())
    body = {"user_id": user_id, "email": "joiner@example.com", "invite_code": code}
    assert (await tenants.internal("POST", "/tenants", json=body)).status_code == 201
    assert (await tenants.internal("DELETE", f"/memberships/{user_id}")).status_code == 204
    members = (await tenants.get("/tenants/members", owner)).json()["items"]
    assert [m["email"] for m in members] == [owner.email]
    assert (await tenants.internal("GET", f"/tenants/{owner.tenant_id}/plan")).status_code == 200
    # The invite was never really used: the next person can join with it.
    again = {"user_id": str(uuid.uuid4()), "email": "joiner@example.com", "invite_code": code}
    joined = await tenants.internal("POST", "/tenants", json=again)
    assert joined.status_code == 201
    assert joined.json()["tenant_id"] == owner.tenant_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.com"}, "user_id"),
        ({"user_id": "not-a-uuid", "email": "a@example.com"}, "user_id"),
        ({"user_id": str(uuid.uuid4())}, "email"),
        ({"user_id": str(uuid.uuid4()), "email": "a" * 255}, "email"),
        ({"user_id": str(uuid.uuid4()), "email": "a@b.c", "tenant_name": "n" * 101}, "tenant_name"),
        ({"user_id": str(uuid.uuid4()), "email": "a@b.c", "invite_code": "c" * 129}, "invite_code"),
        ({"user_id": str(uuid.uuid4()), "email": "a@b.c", "plan": "gold"}, "plan"),
    ],
)
async def test_creating_a_tenant_refuses_bad_input(
    tenants: Tenants, body: dict[str, Any], field: str
) -> None:
    assert_problem(await tenants.internal("POST", "/tenants", json=body), 422, field=field)


async def test_an_unknown_used_or_expired_invite_is_refused(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()

    def join(code: str) -> dict[str, Any]:
        return {"user_id": str(uuid.uuid4()), "email": "x@example.com", "invite_code": code}

    assert_problem(await tenants.internal("POST", "/tenants", json=join("nope")), 404)
    code = await invite(tenants, owner)
    assert (await tenants.internal("POST", "/tenants", json=join(code))).status_code == 201
    assert_problem(await tenants.internal("POST", "/tenants", json=join(code)), 409)
    stale = await invite(tenants, owner)
    database = stack.running.apps["tenants"].state.database
    async with database.transaction() as session:
        await session.execute(
            update(Invite)
            .where(Invite.code_hash == hash_code(stale))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert_problem(await tenants.internal("POST", "/tenants", json=join(stale)), 410)


async def test_the_internal_plan_route_answers_for_a_tenant_and_404_for_unknown(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register(tenant_name="Plans Inc")
    response = await tenants.internal("GET", f"/tenants/{owner.tenant_id}/plan")
    assert response.status_code == 200
    assert response.json() == {
        "tenant_id": owner.tenant_id,
        "tenant_name": "Plans Inc",
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
        "features": [],
    }
    assert_problem(await tenants.internal("GET", f"/tenants/{uuid.uuid4()}/plan"), 404)
    assert_problem(await tenants.internal("GET", "/tenants/not-a-uuid/plan"), 422)


async def test_a_reservation_is_counted_once_per_key(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    first = await tenants.reserve(owner.tenant_id, key="msg-1")
    assert first.status_code == 200
    assert first.json() == {"allowed": True, "used": 1, "limit": 100, "remaining": 99}
    again = await tenants.reserve(owner.tenant_id, key="msg-1")
    assert again.json()["used"] == 1
    other = await tenants.reserve(owner.tenant_id, key="msg-2")
    assert other.json()["used"] == 2


async def test_a_reservation_past_the_limit_is_429_naming_the_limit(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    assert (await tenants.reserve(owner.tenant_id, key="fill", amount=100)).status_code == 200
    refused = await tenants.reserve(owner.tenant_id, key="one-more")
    body = assert_problem(refused, 429)
    assert body["limit"] == "messages_per_day"
    assert body["plan"] == "basic"
    assert body["upgrade_to"] == "premium"
    assert int(refused.headers["retry-after"]) >= 1
    # Tokens are checked against the month's limit, not counted at reservation.
    tokens = await tenants.reserve(owner.tenant_id, key="t", metric="tokens", amount=5000)
    assert tokens.status_code == 200 and tokens.json()["used"] == 0
    too_many = await tenants.reserve(owner.tenant_id, key="t2", metric="tokens", amount=100_001)
    assert assert_problem(too_many, 429)["limit"] == "tokens_per_month"
    # After an upgrade the refused key may pass.
    await tenants.post("/tenants/subscribe", owner, json={"plan": "premium"})
    assert (await tenants.reserve(owner.tenant_id, key="one-more")).status_code == 200


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"tenant_id": "nope"}, "tenant_id"),
        ({"metric": "agents"}, "metric"),
        ({"amount": -1}, "amount"),
        ({"amount": 10_000_001}, "amount"),
        ({"amount": "many"}, "amount"),
        ({"key": ""}, "key"),
        ({"key": "k" * 201}, "key"),
        ({"extra": True}, "extra"),
    ],
)
async def test_a_reservation_refuses_bad_input(
    stack: Stack, tenants: Tenants, patch: dict[str, Any], field: str
) -> None:
    owner = await stack.register()
    body = {"tenant_id": owner.tenant_id, "metric": "messages", "amount": 1, "key": "k", **patch}
    response = await tenants.internal("POST", "/usage/reserve", json=body)
    assert_problem(response, 422, field=field)


async def test_recorded_tokens_count_once_per_key_and_are_never_refused(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    limit = (await stack.http.get(f"{tenants.base}/tenants/usage", headers=owner.headers)).json()[
        "tokens"
    ]["limit"]

    def record(key: str, amount: int, tenant_id: str = owner.tenant_id) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "metric": "tokens", "amount": amount, "key": key}

    batch = [
        record("c1", limit),
        record("c2", 5),
        record("c1", limit),
        record("x", 7, str(uuid.uuid4())),
    ]
    first = await tenants.internal("POST", "/usage/record", json={"records": batch})
    assert first.status_code == 200, first.text
    assert first.json() == {"recorded": 2}
    again = await tenants.internal("POST", "/usage/record", json={"records": batch[:2]})
    assert again.json() == {"recorded": 0}
    usage = await stack.http.get(f"{tenants.base}/tenants/usage", headers=owner.headers)
    assert usage.json()["tokens"]["used"] == limit + 5


async def test_a_reservation_for_an_unknown_tenant_is_404(tenants: Tenants) -> None:
    assert_problem(await tenants.reserve(str(uuid.uuid4()), key="k"), 404)


async def test_a_reservation_batch_grants_and_refuses_each_reservation_on_its_own(
    stack: Stack, tenants: Tenants
) -> None:
    owner, other = await stack.register(), await stack.register()
    assert (await tenants.reserve(owner.tenant_id, key="fill", amount=99)).status_code == 200

    def asked(tenant_id: str, key: str, metric: str = "messages") -> dict[str, Any]:
        return {"tenant_id": tenant_id, "metric": metric, "amount": 1, "key": key}

    batch = [
        asked(owner.tenant_id, "last"),
        asked(owner.tenant_id, "over"),
        asked(owner.tenant_id, "last"),  # the same key again: counted once
        asked(other.tenant_id, "theirs"),
        asked(owner.tenant_id, "tokens", metric="tokens"),
        asked(str(uuid.uuid4()), "nobody"),
    ]
    response = await tenants.internal("POST", "/usage/reserve-batch", json={"reservations": batch})
    assert response.status_code == 200
    outcomes = response.json()["outcomes"]
    assert [outcome["status"] for outcome in outcomes] == [200, 429, 200, 200, 200, 404]
    granted = {"allowed": True, "used": 100, "limit": 100, "remaining": 0}
    assert outcomes[0]["reservation"] == granted
    refused = outcomes[1]
    assert refused["problem"]["limit"] == "messages_per_day"
    assert refused["problem"]["type"].endswith("/quota-exceeded")
    assert int(refused["headers"]["Retry-After"]) >= 1
    assert outcomes[3]["reservation"]["used"] == 1
    usage = (await tenants.get("/tenants/usage", owner)).json()
    assert usage["messages"]["used"] == 100
    # The refused key was not kept: after an upgrade it passes.
    await tenants.post("/tenants/subscribe", owner, json={"plan": "premium"})
    again = await tenants.internal(
        "POST", "/usage/reserve-batch", json={"reservations": [asked(owner.tenant_id, "over")]}
    )
    assert again.json()["outcomes"][0]["status"] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"reservations": []},
        {"reservations": [{"tenant_id": str(uuid.uuid4()), "metric": "messages", "key": ""}]},
        {"reservations": [{"tenant_id": str(uuid.uuid4()), "key": "k"}] * 101},
        {"reservations": [], "extra": True},
    ],
)
async def test_a_reservation_batch_refuses_bad_input(
    tenants: Tenants, body: dict[str, Any]
) -> None:
    response = await tenants.internal("POST", "/usage/reserve-batch", json=body)
    assert_problem(response, 422)
