"""Agent-proposed titles: opt-in, after a new chat's first reply, metered, told to subscribers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.services.chat.world import Member, World, chat_world, read_sse

from kibitz.services.chat.titles.propose import INSTRUCTION, MAX_TITLE_CHARS, clean_title

MODULES = ["auth", "tenants", "users", "agents", "chat"]


@pytest.fixture
async def titled_world(tmp_path: Path) -> AsyncIterator[World]:
    """The chat world with the users service, where the preference lives."""
    async with chat_world(tmp_path, modules=MODULES) as running:
        yield running


async def _opt_in(world: World, member: Member) -> None:
    deadline = time.monotonic() + 20
    while True:  # the profile is made from auth's `user_registered` event
        response = await world.http.patch(
            world.url("/users/me"),
            headers=member.headers,
            json={"preferences": {"propose_titles": True}},
        )
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 200, response.text
    assert response.json()["preferences"]["propose_titles"] is True


async def _chat(world: World, member: Member, chat_id: str) -> dict[str, Any]:
    response = await world.http.get(world.url(f"/chat/chats/{chat_id}"), headers=member.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _tokens_used(world: World, member: Member) -> int:
    response = await world.http.get(world.url("/tenants/usage"), headers=member.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["tokens"]["used"])


def _title_asks(world: World) -> list[dict[str, Any]]:
    return [r for r in world.simulator.requests if INSTRUCTION in str(r.get("body"))]


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Baking sourdough at home."', "Baking sourdough at home"),
        ("Title: **Bread** basics\nsecond line", "Bread basics"),
        ("   \n", ""),
        ("word " * 40, ("word " * 40)[: MAX_TITLE_CHARS - 1].rstrip() + "…"),
    ],
)
def test_an_answer_becomes_a_plain_single_line_title(answer: str, title: str) -> None:
    assert clean_title(answer) == title


async def test_an_opted_in_users_new_chat_is_renamed_by_its_agent_and_its_subscribers_told(
    titled_world: World,
) -> None:
    world = titled_world
    alice = await world.member()
    await _opt_in(world, alice)
    created = await world.http.post(
        world.url("/chat/chats"), headers=alice.headers, json={"agent_ids": [alice.agent_id]}
    )
    assert created.status_code == 201, created.text
    chat_id = created.json()["id"]
    assert created.json()["title"] == "New chat"

    async with world.stream(alice, chat_id) as stream:
        sent = await world.send(alice, "How do I bake bread?", chat_id=chat_id)
        assert sent.status_code == 201, sent.text
        events = await read_sse(stream, until=lambda event: event.event == "chat.updated")
    updated = events[-1]
    assert updated.event == "chat.updated"
    assert updated.id is None  # a subscriber's Last-Event-ID stays on its messages
    title = updated.data["title"]
    # The simulator answers with what it was asked: the title came from the agent.
    assert title.startswith("Simulated reply from gpt-4o-mini")
    assert len(title) <= MAX_TITLE_CHARS and "\n" not in title
    assert updated.data["id"] == chat_id
    assert (await _chat(world, alice, chat_id))["title"] == title

    asks = _title_asks(world)
    assert len(asks) == 1
    # Metered like a reply: the month's tokens grow by the reply's and the title's.
    reply = await world.wait_finished(alice, chat_id, sent.json()["agent_message"]["id"])
    reply_tokens = reply["input_tokens"] + reply["output_tokens"]
    deadline = time.monotonic() + 20
    while (used := await _tokens_used(world, alice)) <= reply_tokens:
        assert time.monotonic() < deadline, f"title tokens never metered ({used})"
        await asyncio.sleep(0.05)


async def test_no_title_is_proposed_without_opting_in_for_a_named_chat_or_after_a_later_reply(
    titled_world: World,
) -> None:
    world = titled_world
    bob = await world.member()
    plain = await world.send(bob, "Where is the nearest library?")
    assert plain.status_code == 201, plain.text
    bob_chat = plain.json()["chat_id"]
    await world.wait_finished(bob, bob_chat, plain.json()["agent_message"]["id"])

    alice = await world.member()
    await _opt_in(world, alice)
    named = await world.send(alice, "Notes on yeast", title="Yeast notes")
    assert named.status_code == 201, named.text
    named_chat = named.json()["chat_id"]
    await world.wait_finished(alice, named_chat, named.json()["agent_message"]["id"])
    later = await world.send(alice, "And rye?", chat_id=named_chat)
    await world.wait_finished(alice, named_chat, later.json()["agent_message"]["id"])

    # A chat that is proposed a title, last: when its rename is seen, the others had their turn.
    titled = await world.send(alice, "How long does dough rise?")
    titled_chat = titled.json()["chat_id"]
    deadline = time.monotonic() + 20
    while (await _chat(world, alice, titled_chat))["title"] == "How long does dough rise?":
        assert time.monotonic() < deadline, "the control chat was never titled"
        await asyncio.sleep(0.05)

    assert len(_title_asks(world)) == 1
    assert (await _chat(world, bob, bob_chat))["title"] == "Where is the nearest library?"
    assert (await _chat(world, alice, named_chat))["title"] == "Yeast notes"
