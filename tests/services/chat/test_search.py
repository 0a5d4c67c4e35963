"""GET /chat/search over HTTP, on SQLite (FTS5) and PostgreSQL (tsvector): what is found, in what
order, with which highlights, and never another user's messages."""

from __future__ import annotations

from typing import Any

import pytest
from tests.services.chat.world import Member, World


async def say(world: World, member: Member, *contents: str, chat_id: str | None = None) -> str:
    """Send messages into one chat (a new one unless given), each after the reply finished."""
    for content in contents:
        response = await world.send(member, content, chat_id=chat_id)
        assert response.status_code == 201, response.text
        body = response.json()
        chat_id = body["chat_id"]
        await world.wait_finished(member, chat_id, body["agent_message"]["id"])
    assert chat_id is not None
    return chat_id


async def search(world: World, member: Member, q: str, **params: Any) -> dict[str, Any]:
    response = await world.http.get(
        world.url("/chat/search"), params={"q": q, **params}, headers=member.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def marked(hit: dict[str, Any]) -> list[str]:
    """The highlighted words of a hit."""
    return [hit["snippet"][h["start"] : h["end"]] for h in hit["highlights"]]


async def test_finds_my_messages_and_my_agents_replies_with_highlights(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await say(world, alice, "How do I water a cactus in winter?")
    await say(world, alice, "Recipes with lentils please")

    found = await search(world, alice, "cactus")
    senders = sorted(hit["sender"] for hit in found["items"])
    # The simulated reply repeats the user's words, so both sides of the exchange match.
    assert senders == ["agent", "user"]
    for hit in found["items"]:
        assert hit["chat_id"] == chat_id
        assert hit["chat_title"].startswith("How do I water a cactus")
        assert [word.lower() for word in marked(hit)] == ["cactus"]
        assert "\ue000" not in hit["snippet"] and "<" not in hit["snippet"]
    user_hit = next(hit for hit in found["items"] if hit["sender"] == "user")
    assert user_hit["snippet"] == "How do I water a cactus in winter?"
    assert found["next_cursor"] is None

    replies = await search(world, alice, "simulated lentils")
    assert [hit["sender"] for hit in replies["items"]] == ["agent"]
    assert (await search(world, alice, "giraffe"))["items"] == []


async def test_words_match_their_other_forms_and_prefixes(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    await say(world, alice, "She was running the Kubernetes cluster")
    assert len((await search(world, alice, "runs"))["items"]) == 2  # stemmed: run
    assert len((await search(world, alice, "kuber"))["items"]) == 2  # the last word as a prefix
    assert (await search(world, alice, "kuber cluster"))["items"] == []  # only the last one
    assert len((await search(world, alice, '"kubernetes cluster"'))["items"]) == 2
    assert (await search(world, alice, '"cluster kubernetes"'))[
        "items"
    ] == []  # a phrase keeps order


async def test_the_better_match_ranks_first(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    weak = await say(world, alice, "A long note about gardens, soil, weather, birds and a fox")
    strong = await say(world, alice, "fox fox fox")
    hits = (await search(world, alice, "fox", limit=10))["items"]
    assert hits[0]["chat_id"] == strong
    assert hits[-1]["chat_id"] == weak


async def test_never_another_users_messages(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    invite = await world.http.post(
        world.url("/tenants/invites"), json={"role": "member"}, headers=alice.headers
    )
    assert invite.status_code == 201, invite.text
    colleague = await world.member(invite_code=invite.json()["code"])
    stranger = await world.member()
    assert colleague.account.tenant_id == alice.account.tenant_id
    assert stranger.account.tenant_id != alice.account.tenant_id
    mine = await say(world, alice, "the secret password is marmalade")
    theirs = await say(world, colleague, "marmalade for breakfast")
    foreign = await say(world, stranger, "marmalade everywhere")

    for member, chat_id in ((alice, mine), (colleague, theirs), (stranger, foreign)):
        hits = (await search(world, member, "marmalade"))["items"]
        assert {hit["chat_id"] for hit in hits} == {chat_id}
        # Not through the owner token either: another user's id is just a word.
        for other in (alice, colleague, stranger):
            assert (await search(world, member, str(other.account.user["id"]).replace("-", "")))[
                "items"
            ] == []


async def test_a_deleted_chat_is_no_longer_found(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    kept = await say(world, alice, "zucchini bread")
    gone = await say(world, alice, "zucchini soup")
    deleted = await world.http.delete(world.url(f"/chat/chats/{gone}"), headers=alice.headers)
    assert deleted.status_code == 204
    assert {hit["chat_id"] for hit in (await search(world, alice, "zucchini"))["items"]} == {kept}


async def test_a_reply_is_found_once_it_has_finished(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    body = (
        await world.send(alice, "tell me about quasars [sim:tokens=400] [sim:gap-ms=20]")
    ).json()
    chat_id, reply_id = body["chat_id"], body["agent_message"]["id"]
    # While it streams (and its progress is written), only the question is found.
    while True:
        history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
        reply = next(m for m in history.json()["messages"] if m["id"] == reply_id)
        if "quasars" in reply["content"]:
            break
    assert reply["status"] == "streaming"
    hits = (await search(world, alice, "quasars"))["items"]
    assert [hit["sender"] for hit in hits] == ["user"]
    await world.wait_finished(alice, chat_id, reply_id, timeout=30)
    hits = (await search(world, alice, "quasars"))["items"]
    assert sorted(hit["sender"] for hit in hits) == ["agent", "user"]


async def test_pages_follow_the_cursor_without_repeats(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await say(world, alice, "walrus one", "walrus two", "walrus three")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await search(world, alice, "walrus", **params)
        assert len(page["items"]) <= 2
        seen += [hit["message_id"] for hit in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6  # three questions, three replies
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert set(seen) == {m["id"] for m in history.json()["messages"]}


# What FTS5's and tsquery's own syntaxes would misread, and text no engine likes.
AWKWARD_QUERIES = [
    '"',
    '""',
    '"unclosed phrase',
    "*",
    "walrus*",
    "AND",
    "walrus OR",
    "NEAR(walrus one)",
    "owner:walrus",
    "content:walrus",
    "{content}: walrus",
    "walrus^",
    "-walrus",
    "(walrus",
    "'); DROP TABLE messages; --",
    "a & b | !c <-> d:*",
    "walrus:*",
    "\\",
    "walrus\x00",
    "\x07bell",
    "🦭 walrus",
    "ünïcödé",
    "ªº_ⅷ",
    "the",
    "a " * 90,
]


async def test_any_text_is_a_valid_query(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    await say(world, alice, "walrus one")
    for q in AWKWARD_QUERIES:
        response = await world.http.get(
            world.url("/chat/search"), params={"q": q}, headers=alice.headers
        )
        assert response.status_code == 200, (q, response.text)
        assert set(response.json()) == {"items", "next_cursor"}
    found = await search(world, alice, "walrus\x00")
    assert len(found["items"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {},
        {"q": "x" * 201},
        {"q": "walrus", "limit": 0},
        {"q": "walrus", "limit": 201},
        {"q": "walrus", "cursor": "not-a-cursor"},
        {"q": "walrus", "cursor": "c2VhcmNoOjk5OTk5"},  # beyond the deepest page
    ],
)
async def test_bad_parameters_are_422(world: World, params: dict[str, Any]) -> None:
    alice = await world.member()
    response = await world.http.get(world.url("/chat/search"), params=params, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_search_needs_a_token(world: World) -> None:
    response = await world.http.get(world.url("/chat/search"), params={"q": "x"})
    assert response.status_code == 401
