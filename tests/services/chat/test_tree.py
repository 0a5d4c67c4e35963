"""A chat as a tree over HTTP: branches and their sibling ids, answering from an earlier point,
regenerating and editing (streamed, idempotent, counted against the quota), the agent asked from
the branch alone, and isolation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.services.chat.test_service import plans_file
from tests.services.chat.world import (
    Member,
    World,
    chat_world,
    new_key,
    read_sse,
    streamed_text,
)


async def history(world: World, member: Member, chat_id: str, **params: Any) -> dict[str, Any]:
    response = await world.http.get(
        world.url(f"/chat/history/{chat_id}"), params=params, headers=member.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contents(page: dict[str, Any]) -> list[str]:
    return [message["content"] for message in page["messages"] if message["sender"] == "user"]


async def say(world: World, member: Member, content: str, **extra: Any) -> dict[str, Any]:
    """A send whose reply has finished; its answer."""
    response = await world.send(member, content, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    await world.wait_finished(member, body["chat_id"], body["agent_message"]["id"])
    return body


async def post(world: World, member: Member, path: str, body: Any = None, **headers: str) -> Any:
    return await world.http.post(world.url(path), json=body, headers={**member.headers, **headers})


async def regenerated(world: World, member: Member, reply_id: str, **body: Any) -> dict[str, Any]:
    response = await post(world, member, f"/chat/messages/{reply_id}/regenerate", body or None)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    await world.wait_finished(member, answer["chat_id"], answer["agent_message"]["id"])
    return answer


async def test_messages_chain_and_the_history_shows_the_newest_branch(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    first = await say(world, alice, "one [sim:tokens=2]")
    chat_id = first["chat_id"]
    second = await say(world, alice, "two [sim:tokens=2]", chat_id=chat_id)
    assert first["user_message"]["parent_id"] is None
    assert first["agent_message"]["parent_id"] == first["user_message"]["id"]
    assert second["user_message"]["parent_id"] == first["agent_message"]["id"]
    page = await history(world, alice, chat_id)
    assert [m["parent_id"] for m in page["messages"]] == [
        None,
        first["user_message"]["id"],
        first["agent_message"]["id"],
        second["user_message"]["id"],
    ]
    assert all(m["sibling_ids"] == [m["id"]] for m in page["messages"])


async def test_regenerating_adds_a_reply_beside_the_old_one_and_both_branches_can_be_read(
    world_on: World,
) -> None:
    world = world_on
    alice = await world.member()
    first = await say(world, alice, "question [sim:tokens=3]")
    chat_id, old_reply = first["chat_id"], first["agent_message"]["id"]
    again = await regenerated(world, alice, old_reply)
    new_reply = again["agent_message"]
    assert new_reply["parent_id"] == first["user_message"]["id"]
    assert new_reply["agent_id"] == alice.agent_id
    assert "user_message" not in again
    page = await history(world, alice, chat_id)
    assert [m["id"] for m in page["messages"]] == [first["user_message"]["id"], new_reply["id"]]
    assert page["messages"][1]["sibling_ids"] == [old_reply, new_reply["id"]]
    older = await history(world, alice, chat_id, leaf=old_reply)
    assert [m["id"] for m in older["messages"]] == [first["user_message"]["id"], old_reply]
    assert older["messages"][1]["sibling_ids"] == [old_reply, new_reply["id"]]
    # A send continues the branch the client shows: after the old reply when it says so.
    after_old = await say(world, alice, "follow up", chat_id=chat_id, parent_message_id=old_reply)
    assert after_old["user_message"]["parent_id"] == old_reply
    newest = await history(world, alice, chat_id)
    assert contents(newest) == ["question [sim:tokens=3]", "follow up"]
    assert newest["messages"][1]["id"] == old_reply
    # Naming a sibling shows where its conversation went last.
    switched = await history(world, alice, chat_id, leaf=old_reply)
    assert switched["messages"][-1]["id"] == after_old["agent_message"]["id"]


async def test_an_edit_is_a_new_user_message_beside_the_old_one_answered_from_its_branch(
    world: World,
) -> None:
    alice = await world.member()
    first = await say(world, alice, "alpha [sim:tokens=2]")
    chat_id = first["chat_id"]
    second = await say(world, alice, "beta [sim:tokens=2]", chat_id=chat_id)
    await say(world, alice, "gamma [sim:tokens=2]", chat_id=chat_id)
    response = await post(
        world, alice, f"/chat/messages/{second['user_message']['id']}/edit", {"content": "BETA"}
    )
    assert response.status_code == 201, response.text
    edited = response.json()
    assert edited["user_message"]["parent_id"] == first["agent_message"]["id"]
    assert edited["agent_message"]["parent_id"] == edited["user_message"]["id"]
    await world.wait_finished(alice, chat_id, edited["agent_message"]["id"])
    # The agent saw the branch up to the edit, not the message it replaces or what followed.
    asked = [m["content"] for m in world.simulator.requests[-1]["body"]["messages"]]
    assert "BETA" in asked[-1]
    assert not any("beta" in text or "gamma" in text for text in asked)
    assert asked[-3].startswith("alpha")
    page = await history(world, alice, chat_id)
    assert contents(page) == ["alpha [sim:tokens=2]", "BETA"]
    assert page["messages"][2]["sibling_ids"] == [
        second["user_message"]["id"],
        edited["user_message"]["id"],
    ]
    # Editing the first message makes a second root.
    root = await post(
        world, alice, f"/chat/messages/{first['user_message']['id']}/edit", {"content": "ALPHA"}
    )
    assert root.status_code == 201, root.text
    assert root.json()["user_message"]["parent_id"] is None
    await world.wait_finished(alice, chat_id, root.json()["agent_message"]["id"])
    page = await history(world, alice, chat_id)
    assert contents(page) == ["ALPHA"]
    assert page["messages"][0]["sibling_ids"] == [
        first["user_message"]["id"],
        root.json()["user_message"]["id"],
    ]


async def test_regenerate_and_edit_stream_like_a_send(world: World) -> None:
    alice = await world.member()
    first = await say(world, alice, "hello [sim:tokens=2]")
    for path, body in (
        (f"/chat/messages/{first['agent_message']['id']}/regenerate", None),
        (f"/chat/messages/{first['user_message']['id']}/edit", {"content": "hi [sim:tokens=5]"}),
    ):
        async with world.http.stream(
            "POST",
            world.url(path),
            json=body,
            headers={**alice.headers, "Accept": "text/event-stream"},
        ) as response:
            assert response.status_code == 201
            assert response.headers["content-type"].startswith("text/event-stream")
            events = await read_sse(response)
        created = [e.data["id"] for e in events if e.event == "message.created"]
        reply_id = created[-1]
        assert events[-1].event == "message.completed"
        assert events[-1].data["id"] == reply_id
        assert events[-1].data["parent_id"] is not None
        assert streamed_text(events, reply_id) == events[-1].data["content"]


async def test_a_retried_regeneration_or_edit_with_the_same_key_stores_one(world: World) -> None:
    alice = await world.member()
    first = await say(world, alice, "hello [sim:tokens=2]")
    chat_id = first["chat_id"]
    key = new_key()
    path = f"/chat/messages/{first['agent_message']['id']}/regenerate"
    answers = await asyncio.gather(
        *(post(world, alice, path, **{"Idempotency-Key": key}) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    await world.wait_finished(alice, chat_id, answers[0].json()["agent_message"]["id"])
    edit_path = f"/chat/messages/{first['user_message']['id']}/edit"
    edit_key = {"Idempotency-Key": new_key()}
    edits = [await post(world, alice, edit_path, {"content": "again"}, **edit_key) for _ in "ab"]
    assert edits[0].json() == edits[1].json()
    assert edits[1].headers["idempotent-replayed"] == "true"
    # The same key for another request is refused, not replayed.
    other = await post(world, alice, edit_path, {"content": "different"}, **edit_key)
    assert other.status_code == 422
    await world.wait_finished(alice, chat_id, edits[0].json()["agent_message"]["id"])
    page = await history(world, alice, chat_id, leaf=first["agent_message"]["id"])
    assert len(page["messages"][1]["sibling_ids"]) == 2  # the old reply and one regeneration
    newest = await history(world, alice, chat_id)
    assert len(newest["messages"][0]["sibling_ids"]) == 2  # the old message and one edit


@pytest.fixture
async def three_message_world(tmp_path: Path) -> Any:
    env = {"KIBITZ_TENANTS_PLANS_FILE": str(plans_file(tmp_path, 3))}
    async with chat_world(tmp_path, env=env) as world:
        yield world


async def test_regenerations_and_edits_count_against_the_daily_messages(
    three_message_world: World,
) -> None:
    world = three_message_world
    alice = await world.member()
    first = await say(world, alice, "one [sim:tokens=1]")
    await regenerated(world, alice, first["agent_message"]["id"])
    edit_path = f"/chat/messages/{first['user_message']['id']}/edit"
    edited = await post(world, alice, edit_path, {"content": "two [sim:tokens=1]"})
    assert edited.status_code == 201, edited.text
    for refused in (
        await post(world, alice, f"/chat/messages/{first['agent_message']['id']}/regenerate"),
        await post(world, alice, edit_path, {"content": "three"}),
        await world.send(alice, "four", chat_id=first["chat_id"]),
    ):
        assert refused.status_code == 429, refused.text
        assert refused.json()["limit"] == "messages_per_day"


async def test_regenerating_in_a_chat_of_several_agents_may_name_another_participant(
    world: World,
) -> None:
    alice = await world.member()
    created = await world.http.post(
        world.url("/agents/create"),
        headers=alice.headers,
        json={"name": "Critic", "llm_provider": "openai", "model": "gpt-4o-mini"}
        | {"instructions": "."},
    )
    critic = created.json()["id"]
    subscribed = await post(world, alice, "/tenants/subscribe", {"plan": "gold"})
    assert subscribed.status_code == 200, subscribed.text
    first = await say(
        world, alice, "hi [sim:tokens=2]", agent_id=None, agent_ids=[alice.agent_id, critic]
    )
    reply = first["agent_message"]["id"]
    by_critic = await regenerated(world, alice, reply, agent_id=critic)
    assert by_critic["agent_message"]["agent_id"] == critic
    stranger = await world.member()
    refused = await post(
        world, alice, f"/chat/messages/{reply}/regenerate", {"agent_id": stranger.agent_id}
    )
    assert refused.status_code == 422, refused.text


async def test_only_replies_are_regenerated_and_only_user_messages_edited(world: World) -> None:
    alice = await world.member()
    first = await say(world, alice, "hello [sim:tokens=1]")
    user_id, reply_id = first["user_message"]["id"], first["agent_message"]["id"]
    assert (await post(world, alice, f"/chat/messages/{user_id}/regenerate")).status_code == 409
    wrong = await post(world, alice, f"/chat/messages/{reply_id}/edit", {"content": "x"})
    assert wrong.status_code == 409
    empty = await post(world, alice, f"/chat/messages/{user_id}/edit", {"content": ""})
    assert empty.status_code == 422
    too_long = await post(world, alice, f"/chat/messages/{user_id}/edit", {"content": "x" * 40_000})
    assert too_long.status_code == 413


async def test_another_users_chat_or_message_is_not_found_for_every_tree_route(
    world: World,
) -> None:
    alice, mallory = await world.member(), await world.member()
    first = await say(world, alice, "private [sim:tokens=1]")
    chat_id, user_id = first["chat_id"], first["user_message"]["id"]
    reply_id = first["agent_message"]["id"]
    assert (await post(world, mallory, f"/chat/messages/{reply_id}/regenerate")).status_code == 404
    edit = await post(world, mallory, f"/chat/messages/{user_id}/edit", {"content": "mine now"})
    assert edit.status_code == 404
    stolen = await world.http.get(
        world.url(f"/chat/history/{chat_id}"), params={"leaf": reply_id}, headers=mallory.headers
    )
    assert stolen.status_code == 404
    # Mallory's own chat cannot reach into Alice's tree either.
    own = await say(world, mallory, "mine [sim:tokens=1]")
    foreign = await world.http.get(
        world.url(f"/chat/history/{own['chat_id']}"),
        params={"leaf": reply_id},
        headers=mallory.headers,
    )
    assert foreign.status_code == 404
    grafted = await world.send(mallory, "graft", chat_id=own["chat_id"], parent_message_id=reply_id)
    assert grafted.status_code == 404
    before = await world.http.get(
        world.url(f"/chat/history/{own['chat_id']}"),
        params={"before": reply_id},
        headers=mallory.headers,
    )
    assert before.status_code == 404
    page = await history(world, alice, chat_id)
    assert [m["id"] for m in page["messages"]] == [user_id, reply_id]


async def test_a_branch_pages_back_to_its_root(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    first = await say(world, alice, "m0 [sim:tokens=1]")
    chat_id = first["chat_id"]
    for index in range(1, 4):
        await say(world, alice, f"m{index} [sim:tokens=1]", chat_id=chat_id)
    # A side branch from the second reply, then back on the main line.
    side = await say(
        world, alice, "side", chat_id=chat_id, parent_message_id=first["agent_message"]["id"]
    )
    leaf = side["agent_message"]["id"]
    seen: list[str] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 3, "leaf": leaf}
        if before:
            params["before"] = before
        page = await history(world, alice, chat_id, **params)
        seen = [m["content"] for m in page["messages"]] + seen
        before = page["next_cursor"]
        if before is None:
            break
    assert [text for text in seen if not text.startswith("Simulated")] == [
        "m0 [sim:tokens=1]",
        "side",
    ]
    assert len(seen) == 4


async def test_export_shows_the_visible_branch_and_json_may_carry_the_whole_tree(
    world: World,
) -> None:
    alice = await world.member()
    first = await say(world, alice, "start [sim:tokens=2]")
    chat_id, old_reply = first["chat_id"], first["agent_message"]["id"]
    new_reply = (await regenerated(world, alice, old_reply))["agent_message"]["id"]
    url = world.url(f"/chat/chats/{chat_id}/export")

    async def exported(**params: Any) -> list[str]:
        response = await world.http.get(
            url, params={"format": "json", **params}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]]

    assert await exported() == [first["user_message"]["id"], new_reply]
    assert await exported(leaf=old_reply) == [first["user_message"]["id"], old_reply]
    assert await exported(tree="true") == [first["user_message"]["id"], old_reply, new_reply]
    markdown = await world.http.get(url, headers=alice.headers)
    assert markdown.text.count("start [sim:tokens=2]") == 1
    stranger = await world.member()
    refused = await world.http.get(url, params={"leaf": old_reply}, headers=stranger.headers)
    assert refused.status_code == 404


async def test_a_turns_replies_follow_one_another_and_a_later_one_can_be_regenerated(
    world: World,
) -> None:
    alice = await world.member()
    critic = await world.add_agent(alice, "Critic")
    await world.subscribe(alice, "gold")
    created = await post(
        world, alice, "/chat/chats", {"agent_ids": [alice.agent_id, critic], "mode": "panel"}
    )
    chat_id = created.json()["id"]
    sent = await world.send(alice, "Both of you? [sim:tokens=3]", chat_id=chat_id)
    assert sent.status_code == 201, sent.text
    body = sent.json()
    first, second = body["agent_messages"]
    assert first["parent_id"] == body["user_message"]["id"]
    assert second["parent_id"] == first["id"]
    for reply in (first, second):
        await world.wait_finished(alice, chat_id, reply["id"])
    page = await history(world, alice, chat_id)
    assert [m["id"] for m in page["messages"]] == [
        body["user_message"]["id"],
        first["id"],
        second["id"],
    ]
    # The second agent again: beside its first answer, asked with the first agent's folded in.
    again = await regenerated(world, alice, second["id"])
    assert again["agent_message"]["parent_id"] == first["id"]
    assert again["agent_message"]["agent_id"] == critic
    asked = world.simulator.requests[-1]["body"]["messages"]
    last = [m for m in asked if m["role"] != "system"][-1]
    assert last["role"] == "user" and last["content"].startswith("Both of you?")
    first_text = (await history(world, alice, chat_id))["messages"][1]["content"].strip()
    assert first_text in last["content"]
    page = await history(world, alice, chat_id)
    assert page["messages"][-1]["sibling_ids"] == [second["id"], again["agent_message"]["id"]]
