"""The chat HTTP contract: shapes, pagination, bad input, and isolation on every route."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tests.services.chat.world import Member, World, read_sse, reply_finished
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def converse(
    world: World, member: Member, *contents: str
) -> tuple[str, list[dict[str, Any]]]:
    """Send messages into one chat, each after the previous reply finished."""
    chat_id: str | None = None
    answers = []
    for content in contents:
        response = await world.send(member, content, chat_id=chat_id)
        assert response.status_code == 201, response.text
        body = response.json()
        chat_id = body["chat_id"]
        answers.append(body)
        await world.wait_finished(member, chat_id, body["agent_message"]["id"])
    assert chat_id is not None
    return chat_id, answers


async def test_send_stores_the_message_and_answers_with_the_pending_reply(world: World) -> None:
    alice = await world.member()
    response = await world.send(alice, "What is the capital of France, in one word please?")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_message"]["content"] == "What is the capital of France, in one word please?"
    assert body["user_message"]["sender"] == "user"
    assert body["user_message"]["status"] == "complete"
    assert body["agent_message"]["sender"] == "agent"
    assert body["agent_message"]["status"] in ("pending", "streaming")
    assert body["user_message"]["chat_id"] == body["chat_id"]
    chat = await world.http.get(world.url(f"/chat/chats/{body['chat_id']}"), headers=alice.headers)
    assert chat.status_code == 200
    assert chat.json()["title"] == "What is the capital of France, in one…"
    assert chat.json()["agent_id"] == alice.agent_id


async def test_the_reply_is_stored_complete_with_usage(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "Say something [sim:tokens=6]")).json()
    reply = await world.wait_finished(alice, body["chat_id"], body["agent_message"]["id"])
    assert reply["status"] == "complete"
    assert reply["content"].startswith("Simulated reply")
    assert reply["output_tokens"] == 6
    assert reply["input_tokens"] > 0
    assert reply["model"] == "gpt-4o-mini"


async def test_a_given_title_is_kept(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "hello", title="Trip planning")).json()
    chat = await world.http.get(world.url(f"/chat/chats/{body['chat_id']}"), headers=alice.headers)
    assert chat.json()["title"] == "Trip planning"


async def test_the_agent_receives_the_recent_history_of_the_chat(world: World) -> None:
    alice = await world.member()
    await converse(world, alice, "first question", "second question")
    sent = world.simulator.requests[-1]["body"]["messages"]
    contents = [m["content"] for m in sent if m["role"] != "system"]
    assert contents[0] == "first question"
    assert contents[1].startswith("Simulated reply")
    assert contents[-1] == "second question"


async def test_history_pages_back_oldest_first_within_a_page(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "one", "two", "three")
    url = world.url(f"/chat/history/{chat_id}")
    first = (await world.http.get(url, params={"limit": 4}, headers=alice.headers)).json()
    assert [m["sender"] for m in first["messages"]] == ["user", "agent", "user", "agent"]
    assert [m["content"] for m in first["messages"] if m["sender"] == "user"] == ["two", "three"]
    assert first["chat"]["id"] == chat_id
    assert first["next_cursor"] is not None
    ids = [m["id"] for m in first["messages"]]
    assert ids == sorted(ids)
    older = await world.http.get(
        url, params={"limit": 4, "before": first["next_cursor"]}, headers=alice.headers
    )
    second = older.json()
    assert second["messages"][0]["content"] == "one"
    assert len(second["messages"]) == 2
    assert second["next_cursor"] is None


async def test_my_chats_are_listed_most_recently_active_first(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    first, _ = await converse(world, alice, "first chat")
    second, _ = await converse(world, alice, "second chat")
    await converse_in(world, alice, first, "back to the first")
    url = world.url("/chat/chats")
    page = (await world.http.get(url, params={"limit": 1}, headers=alice.headers)).json()
    assert [c["id"] for c in page["items"]] == [first]
    rest = await world.http.get(
        url, params={"limit": 1, "cursor": page["next_cursor"]}, headers=alice.headers
    )
    assert [c["id"] for c in rest.json()["items"]] == [second]
    assert rest.json()["next_cursor"] is None


async def converse_in(world: World, member: Member, chat_id: str, content: str) -> None:
    body = (await world.send(member, content, chat_id=chat_id)).json()
    await world.wait_finished(member, chat_id, body["agent_message"]["id"])


async def test_a_chat_can_be_renamed_and_deleted(world: World) -> None:
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    url = world.url(f"/chat/chats/{chat_id}")
    renamed = await world.http.patch(url, json={"title": "Renamed"}, headers=alice.headers)
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Renamed"
    assert (await world.http.delete(url, headers=alice.headers)).status_code == 204
    assert (await world.http.get(url, headers=alice.headers)).status_code == 404
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert history.status_code == 404


async def test_deleting_a_chat_ends_its_open_streams(world: World) -> None:
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    url = world.url(f"/chat/chats/{chat_id}")
    async with world.stream(alice, chat_id) as stream:
        assert stream.status_code == 200
        reading = asyncio.create_task(read_sse(stream))
        await asyncio.sleep(0.2)  # subscribed, idle
        assert not reading.done()
        assert (await world.http.delete(url, headers=alice.headers)).status_code == 204
        assert await asyncio.wait_for(reading, 5) == []  # the body ended, no event sent
    async with world.stream(alice, chat_id) as again:
        assert again.status_code == 404  # a reconnecting client learns it is gone


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content": ""}, 422),
        ({"content": "   \n "}, 422),
        ({"content": "x" * 32_001}, 413),
        ({}, 422),
        ({"content": "hi", "chat_id": str(uuid.uuid4()), "agent_id": str(uuid.uuid4())}, 422),
        ({"content": "hi", "chat_id": "not-a-uuid"}, 422),
        ({"content": "hi", "chat_id": str(uuid.uuid4())}, 404),
        ({"content": "hi", "agent_id": str(uuid.uuid4())}, 404),
        ({"content": "hi", "agent_id": None, "unknown": 1}, 422),
    ],
)
async def test_bad_sends_answer_problems(world: World, body: dict[str, Any], status: int) -> None:
    alice = await world.member()
    if "content" in body and "chat_id" not in body and "agent_id" not in body:
        body = {**body, "agent_id": alice.agent_id}
    response = await world.http.post(world.url("/chat/send"), json=body, headers=alice.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


async def test_content_of_exactly_the_cap_is_accepted(world: World) -> None:
    alice = await world.member()
    response = await world.send(alice, "x" * 32_000 + " [sim:tokens=1]"[:0])
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/chat/history/{chat}", {"limit": 0}),
        ("/chat/history/{chat}", {"limit": 201}),
        ("/chat/history/{chat}", {"before": "nope"}),
        ("/chat/chats", {"cursor": "!!!"}),
        ("/chat/chats", {"limit": 500}),
    ],
)
async def test_bad_queries_answer_422(world: World, path: str, params: dict[str, Any]) -> None:
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    url = world.url(path.format(chat=chat_id))
    response = await world.http.get(url, params=params, headers=alice.headers)
    assert response.status_code == 422, response.text


async def test_every_route_needs_a_token(world: World) -> None:
    some = str(uuid.uuid4())
    for method, path in [
        ("POST", "/chat/send"),
        ("GET", f"/chat/history/{some}"),
        ("GET", f"/chat/stream/{some}"),
        ("GET", "/chat/chats"),
        ("GET", f"/chat/chats/{some}"),
        ("PATCH", f"/chat/chats/{some}"),
        ("DELETE", f"/chat/chats/{some}"),
        ("POST", f"/chat/messages/{some}/stop"),
    ]:
        response = await world.http.request(method, world.url(path), json={})
        assert response.status_code == 401, (method, path, response.text)


async def test_another_tenants_user_gets_404_on_every_route(world: World) -> None:
    alice = await world.member()
    mallory = await world.member()
    body = (await world.send(alice, "secret plans [sim:tokens=40] [sim:gap-ms=20]")).json()
    chat_id, reply_id = body["chat_id"], body["agent_message"]["id"]
    h = mallory.headers
    assert (
        await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=h)
    ).status_code == 404
    assert (await world.http.get(world.url(f"/chat/chats/{chat_id}"), headers=h)).status_code == 404
    renamed = await world.http.patch(
        world.url(f"/chat/chats/{chat_id}"), json={"title": "x"}, headers=h
    )
    assert renamed.status_code == 404
    assert (
        await world.http.delete(world.url(f"/chat/chats/{chat_id}"), headers=h)
    ).status_code == 404
    stopped = await world.http.post(world.url(f"/chat/messages/{reply_id}/stop"), headers=h)
    assert stopped.status_code == 404
    sent = await world.send(mallory, "let me in", chat_id=chat_id)
    assert sent.status_code == 404
    async with world.stream(mallory, chat_id) as stream:
        assert stream.status_code == 404
    async with world.stream(mallory, chat_id, last_event_id=f"{reply_id}:0") as stream:
        assert stream.status_code == 404
    listed = await world.http.get(world.url("/chat/chats"), headers=h)
    assert listed.json()["items"] == []
    reply = await world.wait_finished(alice, chat_id, reply_id)
    assert reply["status"] == "complete"
    chat = await world.http.get(world.url(f"/chat/chats/{chat_id}"), headers=alice.headers)
    assert chat.json()["title"] == "secret plans [sim:tokens=40] [sim:gap-ms=20]"


async def test_a_member_of_the_same_tenant_cannot_see_anothers_chat(world: World) -> None:
    alice = await world.member()
    invite = await world.http.post(world.url("/tenants/invites"), json={}, headers=alice.headers)
    if invite.status_code != 201:
        pytest.skip("the tenants service does not issue invites in this build")
    colleague = await world.member(invite_code=invite.json()["code"])
    chat_id, _ = await converse(world, alice, "mine")
    response = await world.http.get(
        world.url(f"/chat/history/{chat_id}"), headers=colleague.headers
    )
    assert response.status_code == 404


def ws_url(world: World, chat_id: str) -> str:
    return world.url(f"/chat/ws/{chat_id}").replace("http://", "ws://")


async def ws_events(socket: Any, until_id: str) -> list[dict[str, Any]]:
    events = []
    while True:
        event = __import__("json").loads(await asyncio.wait_for(socket.recv(), 10))
        events.append(event)
        if (
            event["event"] in ("message.completed", "message.failed")
            and event["data"]["id"] == until_id
        ):
            return events


async def test_the_websocket_carries_the_same_events_with_the_token_in_a_subprotocol(
    world: World,
) -> None:
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    async with connect(
        ws_url(world, chat_id),
        subprotocols=["bearer", alice.account.access_token],  # type: ignore[list-item]
    ) as socket:
        assert socket.subprotocol == "bearer"
        body = (await world.send(alice, "again [sim:tokens=5]", chat_id=chat_id)).json()
        events = await ws_events(socket, body["agent_message"]["id"])
    names = [e["event"] for e in events]
    assert names[:2] == ["message.created", "message.created"]
    assert names[-1] == "message.completed"
    text = "".join(e["data"]["content"] for e in events if e["event"] == "message.delta")
    assert text == events[-1]["data"]["content"]
    assert all(e["id"] for e in events)


async def test_the_websocket_accepts_the_token_as_the_first_message(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "hello [sim:tokens=30] [sim:gap-ms=10]")).json()
    async with connect(ws_url(world, body["chat_id"])) as socket:
        await socket.send(
            __import__("json").dumps({"type": "auth", "token": alice.account.access_token})
        )
        events = await ws_events(socket, body["agent_message"]["id"])
    assert events[-1]["data"]["status"] == "complete"
    text = "".join(e["data"]["content"] for e in events if e["event"] == "message.delta")
    assert text == events[-1]["data"]["content"]


async def test_the_websocket_closes_without_a_token_or_for_another_tenant(world: World) -> None:
    alice = await world.member()
    mallory = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    async with connect(ws_url(world, chat_id)) as socket:
        await socket.send('{"type": "auth", "token": "forged"}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with connect(
        ws_url(world, chat_id),
        subprotocols=["bearer", mallory.account.access_token],  # type: ignore[list-item]
    ) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


async def test_sse_responses_are_not_buffered_by_proxies(world: World) -> None:
    alice = await world.member()
    chat_id, _ = await converse(world, alice, "hello")
    async with world.stream(alice, chat_id) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"


async def test_send_with_event_stream_accept_streams_the_reply(world: World) -> None:
    alice = await world.member()
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": "stream it [sim:tokens=8]", "agent_id": alice.agent_id},
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 201
        assert response.headers["x-accel-buffering"] == "no"
        events = await read_sse(response)
    assert [e.event for e in events[:2]] == ["message.created", "message.created"]
    reply_id = events[1].data["id"]
    assert reply_finished(reply_id)(events[-1])
    deltas = [e for e in events if e.event == "message.delta"]
    assert len(deltas) == 8
    assert "".join(e.data["content"] for e in deltas) == events[-1].data["content"]
