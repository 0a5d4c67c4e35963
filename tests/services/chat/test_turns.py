"""Turns of several agents (issue 18): `direct` with @mentions and `panel`, each agent's reply a
job of its own, run one after another, each seeing the answers before it; stopping a turn,
quotas per reply, the per-user cap counting a turn once, a downgrade and an upgrade, resuming
mid-panel, isolation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.chat.world import (
    Member,
    SseEvent,
    World,
    chat_world,
    read_sse,
    reply_finished,
    streamed_text,
)

from kibitz.kit.http import INTERNAL_TOKEN_HEADER

SLOW = "[sim:tokens=30] [sim:gap-ms=25]"


@pytest.fixture
async def fresh_plans(tmp_path: Path) -> AsyncIterator[World]:
    """A world whose chat reads the tenant's plan on every send (a downgrade applies at once)."""
    env = {"KIBITZ_CHAT_PLAN_CACHE_SECONDS": "0"}
    async with chat_world(tmp_path, env=env) as running:
        yield running


async def panel(
    world: World, names: tuple[str, ...] = ("Critic", "Poet"), mode: str = "panel"
) -> tuple[Member, str, list[str]]:
    """A Gold member with a chat of their default agent ("Sim") and agents named `names`."""
    alice = await world.member()
    others = [await world.add_agent(alice, name) for name in names]
    await world.subscribe(alice, "gold")
    agents = [alice.agent_id, *others]
    created = await world.http.post(
        world.url("/chat/chats"), headers=alice.headers, json={"agent_ids": agents, "mode": mode}
    )
    assert created.status_code == 201, created.text
    return alice, str(created.json()["id"]), agents


def conversation(request: dict[str, Any]) -> list[dict[str, str]]:
    """What a simulator request was asked from (without the instructions)."""
    return [m for m in request["body"]["messages"] if m["role"] != "system"]


def instructions(request: dict[str, Any]) -> str:
    return "".join(m["content"] for m in request["body"]["messages"] if m["role"] == "system")


def indexes(events: list[SseEvent], name: str) -> dict[str, int]:
    """Where each message's first event of this kind is in the stream."""
    found: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.event == name:
            found.setdefault(str(event.data.get("message_id") or event.data["id"]), index)
    return found


async def finished_all(world: World, member: Member, chat_id: str, body: dict[str, Any]) -> list:
    return [
        await world.wait_finished(member, chat_id, reply["id"]) for reply in body["agent_messages"]
    ]


async def test_a_panel_is_answered_by_every_agent_in_order_each_seeing_the_answers_before_it(
    world_on: World,
) -> None:
    world = world_on
    alice, chat_id, agents = await panel(world)
    asked_before = len(world.simulator.requests)
    async with world.stream(alice, chat_id) as stream:
        sent = await world.send(alice, "What now? [sim:tokens=6]", chat_id=chat_id)
        assert sent.status_code == 201, sent.text
        body = sent.json()
        replies = body["agent_messages"]
        events = await read_sse(stream, until=reply_finished(replies[-1]["id"]))
    assert [reply["agent_id"] for reply in replies] == agents
    assert body["agent_message"] == replies[0]
    assert [reply["status"] for reply in replies] == ["pending"] * 3
    ids = [reply["id"] for reply in replies]
    assert ids == sorted(ids)  # time-ordered, after the user's message
    assert body["user_message"]["id"] < ids[0]
    # One after another: each starts once the one before has ended.
    completed, first_delta = indexes(events, "message.completed"), indexes(events, "message.delta")
    for before, after in itertools.pairwise(ids):
        assert completed[before] < first_delta[after]
    # Every event names its agent.
    agent_of = {reply["id"]: reply["agent_id"] for reply in replies}
    for event in events:
        message_id = str(event.data.get("message_id") or event.data["id"])
        if message_id in agent_of:
            assert event.data["agent_id"] == agent_of[message_id], event
    stored = await finished_all(world, alice, chat_id, body)
    assert [m["status"] for m in stored] == ["complete"] * 3
    assert [streamed_text(events, i) for i in ids] == [m["content"] for m in stored]
    # Each agent was asked once, in order, with the answers given before it in this turn.
    asked = world.simulator.requests[asked_before:]
    assert [instructions(r) for r in asked] == ["Be brief.", "You are Critic.", "You are Poet."]
    last_user = [conversation(r)[-1] for r in asked]
    assert all(m["role"] == "user" and m["content"].startswith("What now?") for m in last_user)
    assert "answered" not in last_user[0]["content"]
    assert (
        f"Sim (another agent in this chat) answered:\n\n{stored[0]['content'].strip()}"
        in (last_user[1]["content"])
    )
    assert stored[1]["content"].strip() in last_user[2]["content"]
    assert stored[0]["content"].strip() in last_user[2]["content"]


async def test_direct_is_answered_by_the_default_agent_unless_others_are_named(
    world: World,
) -> None:
    alice, chat_id, (sim, critic, poet) = await panel(world, mode="direct")
    plain = (await world.send(alice, "hello [sim:tokens=2]", chat_id=chat_id)).json()
    assert [m["agent_id"] for m in plain["agent_messages"]] == [sim]
    one = (await world.send(alice, "@critic your view? [sim:tokens=2]", chat_id=chat_id)).json()
    assert [m["agent_id"] for m in one["agent_messages"]] == [critic]
    several = (
        await world.send(alice, "@Poet then @CRITIC, and @poet [sim:tokens=2]", chat_id=chat_id)
    ).json()
    assert [m["agent_id"] for m in several["agent_messages"]] == [poet, critic]
    for body in (plain, one, several):
        stored = await finished_all(world, alice, chat_id, body)
        assert [m["status"] for m in stored] == ["complete"] * len(stored)
    # A mention in an email address is no mention.
    mail = (
        await world.send(alice, "mail me@critic.example [sim:tokens=2]", chat_id=chat_id)
    ).json()
    assert [m["agent_id"] for m in mail["agent_messages"]] == [sim]


async def test_a_send_follows_participants_and_names_changed_since_the_last_one(
    world: World,
) -> None:
    alice, chat_id, (sim, critic, poet) = await panel(world)
    first = (await world.send(alice, "all [sim:tokens=2]", chat_id=chat_id)).json()
    await finished_all(world, alice, chat_id, first)
    changed = await world.http.patch(
        world.url(f"/chat/chats/{chat_id}"),
        headers=alice.headers,
        json={"agent_ids": [sim, poet], "mode": "direct"},
    )
    assert changed.status_code == 200, changed.text
    one = (await world.send(alice, "@poet hi [sim:tokens=2]", chat_id=chat_id)).json()
    assert [m["agent_id"] for m in one["agent_messages"]] == [poet]
    await finished_all(world, alice, chat_id, one)
    gone = await world.send(alice, "@critic hi", chat_id=chat_id)
    assert gone.status_code == 422, gone.text
    renamed = await world.http.patch(
        world.url(f"/agents/{poet}"), headers=alice.headers, json={"name": "Bard"}
    )
    assert renamed.status_code == 200, renamed.text
    bard = (await world.send(alice, "@bard hi [sim:tokens=2]", chat_id=chat_id)).json()
    assert [m["agent_id"] for m in bard["agent_messages"]] == [poet]
    await finished_all(world, alice, chat_id, bard)
    assert critic not in [m["agent_id"] for m in bard["agent_messages"]]


async def test_an_unknown_or_ambiguous_mention_is_422_naming_the_choices(world: World) -> None:
    alice, chat_id, _ = await panel(world, names=("Critic", "critic"), mode="direct")
    unknown = await world.send(alice, "@nobody there?", chat_id=chat_id)
    assert unknown.status_code == 422, unknown.text
    problem = unknown.json()
    assert problem["type"].endswith("/mention-not-resolved")
    assert (problem["mention"], problem["reason"]) == ("nobody", "unknown")
    assert sorted(problem["choices"]) == ["Critic", "Sim", "critic"]
    ambiguous = await world.send(alice, "@critic which one?", chat_id=chat_id)
    assert ambiguous.status_code == 422, ambiguous.text
    assert ambiguous.json()["reason"] == "ambiguous"
    # Nothing was stored for either.
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert history.json()["messages"] == []


async def test_mentions_in_a_new_chat_with_several_agents(world: World) -> None:
    alice = await world.member()
    critic = await world.add_agent(alice, "Critic")
    await world.subscribe(alice, "gold")
    sent = await world.send(
        alice, "@critic first [sim:tokens=2]", agent_id=None, agent_ids=[alice.agent_id, critic]
    )
    assert sent.status_code == 201, sent.text
    assert [m["agent_id"] for m in sent.json()["agent_messages"]] == [critic]


async def test_a_one_agent_chat_takes_an_at_sign_as_plain_text(world: World) -> None:
    alice = await world.member()
    sent = await world.send(alice, "ping @nobody [sim:tokens=2]")
    assert sent.status_code == 201, sent.text
    assert [m["agent_id"] for m in sent.json()["agent_messages"]] == [alice.agent_id]


async def test_a_streamed_send_to_a_panel_streams_every_reply_until_the_last_ends(
    world: World,
) -> None:
    alice, chat_id, agents = await panel(world)
    headers = {**alice.headers, "Accept": "text/event-stream"}
    body = {"content": "go [sim:tokens=3]", "chat_id": chat_id}
    async with world.http.stream(
        "POST", f"{world.base}/chat/send", json=body, headers=headers
    ) as response:
        assert response.status_code == 201
        events = await read_sse(response)  # the body ends after the last reply
    ended = [e.data for e in events if e.event == "message.completed"]
    assert [m["agent_id"] for m in ended] == agents
    created = [e.data["agent_id"] for e in events if e.event == "message.created"]
    assert created == [None, *agents]


async def test_stopping_a_panel_mid_way_stops_the_turn(world_on: World) -> None:
    world = world_on
    alice, chat_id, _ = await panel(world)
    async with world.stream(alice, chat_id) as stream:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        first, second, third = body["agent_messages"]
        await world.wait_finished(alice, chat_id, first["id"])
        # The second agent streams: stop it.
        await read_sse(
            stream,
            until=lambda e: e.event == "message.delta" and (e.data["message_id"] == second["id"]),
        )
        stopped = await world.http.post(
            world.url(f"/chat/messages/{second['id']}/stop"), headers=alice.headers
        )
        assert stopped.status_code == 200, stopped.text
        events = await read_sse(stream, until=reply_finished(third["id"]))
    assert stopped.json()["status"] == "stopped" and stopped.json()["content"]
    last = await world.wait_finished(alice, chat_id, third["id"])
    assert (last["status"], last["content"]) == ("stopped", "")
    assert events[-1].event == "message.completed"
    assert events[-1].data["status"] == "stopped"
    assert not [
        e for e in events if e.event == "message.delta" and e.data["message_id"] == third["id"]
    ]
    assert (await world.wait_finished(alice, chat_id, first["id"]))["status"] == "complete"


async def test_a_streamed_send_stopped_mid_panel_ends_after_every_reply_of_the_turn(
    world: World,
) -> None:
    alice, chat_id, _ = await panel(world)
    headers = {**alice.headers, "Accept": "text/event-stream"}
    body = {"content": f"go {SLOW}", "chat_id": chat_id}
    async with world.http.stream(
        "POST", f"{world.base}/chat/send", json=body, headers=headers
    ) as response:
        assert response.status_code == 201
        seen = await read_sse(response, until=lambda e: e.event == "message.delta")
        first = seen[-1].data["message_id"]
        stopped = await world.http.post(
            world.url(f"/chat/messages/{first}/stop"), headers=alice.headers
        )
        assert stopped.json()["status"] == "stopped"
        events = seen + await read_sse(response)  # the body ends once all three ended
    ends = [e.data for e in events if e.event == "message.completed"]
    assert sorted(m["id"] for m in ends) == sorted(
        e.data["id"] for e in events if e.event == "message.created" and e.data["sender"] == "agent"
    )
    assert [m["status"] for m in ends] == ["stopped"] * 3


async def test_stopping_a_reply_that_waits_its_turn_stops_it_and_the_one_streaming(
    world_on: World,
) -> None:
    world = world_on
    alice, chat_id, _ = await panel(world)
    body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
    first, second, third = body["agent_messages"]
    stopped = await world.http.post(
        world.url(f"/chat/messages/{third['id']}/stop"), headers=alice.headers
    )
    assert stopped.status_code == 200, stopped.text
    assert (stopped.json()["status"], stopped.json()["content"]) == ("stopped", "")
    ended = [await world.wait_finished(alice, chat_id, m["id"]) for m in (first, second)]
    assert [m["status"] for m in ended] == ["stopped", "stopped"]
    assert ended[1]["content"] == ""


async def usage(world: World, member: Member) -> dict[str, int]:
    response = await world.http.get(world.url("/tenants/usage"), headers=member.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"messages": body["messages"]["used"], "tokens": body["tokens"]["used"]}


async def settled(world: World, member: Member, until: Any) -> dict[str, int]:
    """The counters once `until(counters)` holds (metering events are relayed asynchronously)."""
    for _ in range(200):
        counters = await usage(world, member)
        if until(counters):
            return counters
        await asyncio.sleep(0.05)
    return await usage(world, member)


async def test_each_reply_of_a_panel_counts_a_message_and_meters_its_tokens(
    world: World,
) -> None:
    alice, chat_id, _ = await panel(world)
    before = await usage(world, alice)
    body = (await world.send(alice, "count me [sim:tokens=5]", chat_id=chat_id)).json()
    stored = await finished_all(world, alice, chat_id, body)
    assert all(m["output_tokens"] == 5 for m in stored)
    tokens = sum(m["input_tokens"] + m["output_tokens"] for m in stored)
    after = await settled(world, alice, lambda c: c["tokens"] >= before["tokens"] + tokens)
    assert after == {"messages": before["messages"] + 3, "tokens": before["tokens"] + tokens}


async def test_replies_that_never_started_give_their_message_back(world: World) -> None:
    alice, chat_id, _ = await panel(world)
    before = await usage(world, alice)
    body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
    first = body["agent_messages"][0]
    stopped = await world.http.post(
        world.url(f"/chat/messages/{first['id']}/stop"), headers=alice.headers
    )
    assert stopped.json()["status"] == "stopped"
    # The first reply keeps its message (the user stopped it); the two never started.
    after = await settled(world, alice, lambda c: c["messages"] == before["messages"] + 1)
    assert after["messages"] == before["messages"] + 1


async def test_a_turn_needs_a_message_per_reply_left_in_the_quota(world: World) -> None:
    alice, chat_id, _ = await panel(world, mode="direct")
    internal = {INTERNAL_TOKEN_HEADER: world.stack.running.platform.internal_token}
    limit = (await world.http.get(world.url("/tenants/usage"), headers=alice.headers)).json()
    left = limit["messages"]["limit"] - limit["messages"]["used"]
    filled = await world.http.post(
        world.stack.url("tenants") + "/tenants/internal/usage/reserve",
        headers=internal,
        json={
            "tenant_id": alice.account.tenant_id,
            "metric": "messages",
            "amount": left - 2,
            "key": "fill",
        },
    )
    assert filled.status_code == 200, filled.text
    refused = await world.send(alice, "@sim @critic @poet, all three?", chat_id=chat_id)
    assert refused.status_code == 429, refused.text
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert history.json()["messages"] == []
    # Two messages still do for one agent.
    one = await world.send(alice, "@poet just you [sim:tokens=2]", chat_id=chat_id)
    assert one.status_code == 201, one.text


@pytest.mark.parametrize("world_env", [{"KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS": "2"}])
async def test_a_turn_counts_as_one_generation_against_the_cap(
    tmp_path: Path, world_env: dict[str, str]
) -> None:
    async with chat_world(tmp_path, env=world_env) as world:
        alice, chat_id, _ = await panel(world)
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        # Three replies stored, one generating: another send still fits under a cap of 2...
        other = await world.send(alice, f"go {SLOW}")
        assert other.status_code == 201, other.text
        # ...and a third does not.
        refused = await world.send(alice, "one more")
        assert refused.status_code == 429, refused.text
        stored = await finished_all(world, alice, chat_id, body)
        assert [m["status"] for m in stored] == ["complete"] * 3


async def test_a_downgraded_chat_is_answered_by_its_default_agent_until_an_upgrade(
    fresh_plans: World,
) -> None:
    world = fresh_plans
    alice, chat_id, (sim, critic, poet) = await panel(world)
    await world.subscribe(alice, "basic")
    # Still readable, and answered by the default agent alone.
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert history.status_code == 200
    sent = await world.send(alice, "still there? [sim:tokens=2]", chat_id=chat_id)
    assert sent.status_code == 201, sent.text
    assert [m["agent_id"] for m in sent.json()["agent_messages"]] == [sim]
    named = await world.send(alice, "@critic?", chat_id=chat_id)
    assert named.status_code == 403, named.text
    assert named.json()["type"].endswith("/feature-not-in-plan")
    assert (named.json()["feature"], named.json()["upgrade_to"]) == ("multi_agent", "gold")
    await world.subscribe(alice, "gold")  # lifted at once
    again = await world.send(alice, "all of you [sim:tokens=2]", chat_id=chat_id)
    assert [m["agent_id"] for m in again.json()["agent_messages"]] == [sim, critic, poet]
    await finished_all(world, alice, chat_id, again.json())


async def test_resuming_mid_panel_with_last_event_id_misses_nothing_and_repeats_nothing(
    world: World,
) -> None:
    alice, chat_id, _ = await panel(world)
    async with world.stream(alice, chat_id) as stream:
        body = (
            await world.send(alice, "go [sim:tokens=12] [sim:gap-ms=20]", chat_id=chat_id)
        ).json()
        first, second, third = body["agent_messages"]
        seen = await read_sse(
            stream,
            until=lambda e: e.event == "message.delta" and e.data["message_id"] == second["id"],
        )
    # Away while the second agent streams; back with the last event id.
    await asyncio.sleep(0.1)
    async with world.stream(alice, chat_id, last_event_id=seen[-1].id) as stream:
        rest = await read_sse(stream, until=reply_finished(third["id"]))
    events = seen + rest
    stored = await finished_all(world, alice, chat_id, body)
    for message in stored:
        assert streamed_text(events, message["id"]) == message["content"]
    ends = [e.data["id"] for e in events if e.event == "message.completed"]
    assert ends == [first["id"], second["id"], third["id"]]


async def test_another_users_chat_or_another_tenants_agent_is_not_found(world: World) -> None:
    alice, chat_id, _ = await panel(world)
    mallory = await world.member()
    await world.subscribe(mallory, "gold")
    theirs = await world.send(mallory, "@critic hi", chat_id=chat_id)
    assert theirs.status_code == 404, theirs.text
    foreign = await world.send(
        mallory, "hi", agent_id=None, agent_ids=[mallory.agent_id, alice.agent_id], mode="panel"
    )
    assert foreign.status_code == 404, foreign.text
    body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
    waiting = body["agent_messages"][2]["id"]
    stop = await world.http.post(
        world.url(f"/chat/messages/{waiting}/stop"), headers=mallory.headers
    )
    assert stop.status_code == 404
    stopped = await world.http.post(
        world.url(f"/chat/messages/{waiting}/stop"), headers=alice.headers
    )
    assert stopped.json()["status"] == "stopped"
