"""A chat's participants over HTTP: several agents and a mode, the `multi_agent` plan gate (and an
upgrade lifting it at once), isolation, validation, and the migration of existing chats."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from tests.services.chat.world import Member, World, read_sse

from kibitz.kit.db.database import create_engine
from kibitz.kit.db.migrations import alembic_config, upgrade_to_head_async
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE


async def add_agent(world: World, member: Member, name: str) -> str:
    """Another simulator-backed agent of the member's."""
    response = await world.http.post(
        world.url("/agents/create"),
        headers=member.headers,
        json={"name": name, "llm_provider": "openai", "model": "gpt-4o-mini", "instructions": "."},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def subscribe(world: World, member: Member, plan: str) -> None:
    response = await world.http.post(
        world.url("/tenants/subscribe"), headers=member.headers, json={"plan": plan}
    )
    assert response.status_code == 200, response.text


async def create(world: World, member: Member, **body: Any) -> Any:
    return await world.http.post(world.url("/chat/chats"), headers=member.headers, json=body)


async def test_several_agents_or_a_panel_need_multi_agent_and_an_upgrade_lifts_it_at_once(
    world: World,
) -> None:
    alice = await world.member()
    second = await add_agent(world, alice, "Critic")
    for body in (
        {"agent_ids": [alice.agent_id, second]},
        {"agent_ids": [alice.agent_id], "mode": "panel"},
    ):
        refused = await create(world, alice, **body)
        assert refused.status_code == 403, refused.text
        problem = refused.json()
        assert problem["type"].endswith("/feature-not-in-plan")
        assert problem["feature"] == "multi_agent"
        assert problem["upgrade_to"] == "gold"
        sent = await world.send(alice, "hi", agent_id=None, **body)
        assert sent.status_code == 403, sent.text
    # One agent, direct: every plan.
    assert (await create(world, alice, agent_ids=[alice.agent_id])).status_code == 201
    await subscribe(world, alice, "gold")
    created = await create(world, alice, agent_ids=[alice.agent_id, second], mode="panel")
    assert created.status_code == 201, created.text
    chat = created.json()
    assert chat["agent_ids"] == [alice.agent_id, second]
    assert chat["agent_id"] == alice.agent_id
    assert chat["mode"] == "panel"
    assert chat["title"] == "New chat"
    listed = await world.http.get(world.url("/chat/chats"), headers=alice.headers)
    assert chat["id"] in [item["id"] for item in listed.json()["items"]]


async def test_a_send_with_agent_ids_starts_a_chat_with_those_participants(world: World) -> None:
    alice = await world.member()
    second = await add_agent(world, alice, "Critic")
    await subscribe(world, alice, "gold")
    response = await world.send(
        alice, "hello both", agent_id=None, agent_ids=[second, alice.agent_id], mode="panel"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_message"]["agent_id"] is None
    assert body["agent_message"]["agent_id"] == second
    # A panel: every participant answers, in order.
    assert [m["agent_id"] for m in body["agent_messages"]] == [second, alice.agent_id]
    assert body["agent_messages"][0] == body["agent_message"]
    for message in body["agent_messages"]:
        reply = await world.wait_finished(alice, body["chat_id"], message["id"])
        assert (reply["agent_id"], reply["status"]) == (message["agent_id"], "complete"), reply
    chat = (
        await world.http.get(world.url(f"/chat/chats/{body['chat_id']}"), headers=alice.headers)
    ).json()
    assert chat["agent_ids"] == [second, alice.agent_id]
    assert chat["agent_id"] == second
    assert chat["mode"] == "panel"
    # The next send in the chat is answered by the panel too, the default agent first.
    again = (await world.send(alice, "and again", chat_id=body["chat_id"])).json()
    assert [m["agent_id"] for m in again["agent_messages"]] == [second, alice.agent_id]


async def test_participants_and_mode_can_be_changed_and_the_first_becomes_the_default(
    world: World,
) -> None:
    alice = await world.member()
    second = await add_agent(world, alice, "Critic")
    chat = (await create(world, alice, agent_ids=[alice.agent_id], title="Plans")).json()
    url = world.url(f"/chat/chats/{chat['id']}")
    refused = await world.http.patch(
        url, headers=alice.headers, json={"agent_ids": [alice.agent_id, second]}
    )
    assert refused.status_code == 403, refused.text
    await subscribe(world, alice, "gold")
    changed = await world.http.patch(
        url,
        headers=alice.headers,
        json={"agent_ids": [second, alice.agent_id], "mode": "panel", "title": "Plans 2"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["agent_ids"] == [second, alice.agent_id]
    assert changed.json()["agent_id"] == second
    assert changed.json()["mode"] == "panel"
    assert changed.json()["title"] == "Plans 2"
    renamed = await world.http.patch(url, headers=alice.headers, json={"title": "Only a title"})
    assert renamed.json()["title"] == "Only a title"
    assert renamed.json()["mode"] == "panel"
    sent = (await world.send(alice, "who answers?", chat_id=chat["id"])).json()
    assert sent["agent_message"]["agent_id"] == second


async def test_another_tenants_agent_or_chat_is_not_found(world: World) -> None:
    alice, mallory = await world.member(), await world.member()
    await subscribe(world, alice, "gold")
    foreign = [alice.agent_id, mallory.agent_id]
    created = await create(world, alice, agent_ids=foreign)
    assert created.status_code == 404, created.text
    assert created.json()["type"].endswith("/agent-not-found")
    sent = await world.send(alice, "hi", agent_id=None, agent_ids=foreign)
    assert sent.status_code == 404, sent.text
    chat = (await create(world, alice, agent_ids=[alice.agent_id])).json()
    url = world.url(f"/chat/chats/{chat['id']}")
    patched = await world.http.patch(url, headers=alice.headers, json={"agent_ids": foreign})
    assert patched.status_code == 404, patched.text
    theirs = await world.http.patch(url, headers=mallory.headers, json={"mode": "direct"})
    assert theirs.status_code == 404, theirs.text
    unknown = await create(world, alice, agent_ids=[str(uuid.uuid4())])
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"agent_ids": []},
        {"agent_ids": [str(uuid.uuid4()) for _ in range(9)]},
        {"agent_ids": [str(uuid.UUID(int=1))] * 2},
        {"agent_ids": [str(uuid.uuid4())], "mode": "round-robin"},
        {"mode": "panel"},
    ],
)
async def test_bad_participants_answer_422(world: World, body: dict[str, Any]) -> None:
    alice = await world.member()
    response = await create(world, alice, **body)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "extra",
    [
        {"agent_ids": [str(uuid.uuid4())], "agent_id": str(uuid.uuid4())},
        {"agent_ids": [str(uuid.uuid4())], "chat_id": str(uuid.uuid4())},
        {"chat_id": str(uuid.uuid4()), "mode": "panel"},
        {"agent_ids": []},
    ],
)
async def test_a_send_naming_its_target_twice_answers_422(
    world: World, extra: dict[str, Any]
) -> None:
    alice = await world.member()
    body = {"content": "hi", **extra}
    response = await world.http.post(f"{world.base}/chat/send", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text


async def test_an_empty_patch_answers_422(world: World) -> None:
    alice = await world.member()
    chat = (await create(world, alice, agent_ids=[alice.agent_id])).json()
    url = world.url(f"/chat/chats/{chat['id']}")
    assert (await world.http.patch(url, headers=alice.headers, json={})).status_code == 422


async def test_existing_chats_get_their_agent_as_the_only_participant(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    config = alembic_config(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    await asyncio.to_thread(command.upgrade, config, "chat_reply_jobs")
    chat_id, agent_id, ids = uuid.uuid4(), uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    now = datetime.now(UTC).isoformat()
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO chats (id, tenant_id, user_id, agent_id, title, created_at,"
                " updated_at) VALUES (:id, :t, :u, :a, 'old', :now, :now)"
            ),
            {
                "id": chat_id.hex,
                "t": uuid.uuid4().hex,
                "u": uuid.uuid4().hex,
                "a": agent_id.hex,
                "now": now,
            },
        )
        for message_id, sender in zip(ids, ("user", "agent"), strict=True):
            await connection.execute(
                text(
                    "INSERT INTO messages (id, chat_id, tenant_id, user_id, sender, content,"
                    " status, input_tokens, output_tokens, created_at, updated_at) VALUES"
                    " (:id, :c, :c, :c, :s, 'x', 'complete', 0, 0, :now, :now)"
                ),
                {"id": message_id.hex, "c": chat_id.hex, "s": sender, "now": now},
            )
    await upgrade_to_head_async(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    async with engine.connect() as connection:
        chat = (await connection.execute(text("SELECT agent_ids, mode FROM chats"))).one()
        senders = dict(
            (await connection.execute(text("SELECT sender, agent_id FROM messages"))).all()
        )
    await engine.dispose()
    assert [uuid.UUID(value) for value in json.loads(chat[0])] == [agent_id]
    assert chat[1] == "direct"
    assert senders.get("user", "missing") is None, senders
    assert uuid.UUID(senders["agent"]) == agent_id


async def test_the_events_of_a_reply_name_its_agent(world: World) -> None:
    alice = await world.member()
    second = await add_agent(world, alice, "Critic")
    await subscribe(world, alice, "gold")
    body = {"content": "hi [sim:tokens=3]", "agent_ids": [second, alice.agent_id]}
    headers = {**alice.headers, "Accept": "text/event-stream"}
    async with world.http.stream(
        "POST", f"{world.base}/chat/send", json=body, headers=headers
    ) as response:
        assert response.status_code == 201
        events = await read_sse(
            response, until=lambda e: e.event in ("message.completed", "message.failed")
        )
    created = [e.data for e in events if e.event == "message.created"]
    assert [m["agent_id"] for m in created] == [None, second]
    assert events[-1].event == "message.completed"
    assert events[-1].data["agent_id"] == second
