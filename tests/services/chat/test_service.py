"""Chat's rules: replies generated in the background, streamed, resumable, stoppable, metered,
idempotent sends and quotas."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.services.chat.world import (
    Member,
    SseEvent,
    World,
    chat_world,
    new_key,
    read_sse,
    reply_finished,
    streamed_text,
)

from kibitz.kit.events import EventEnvelope
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Message, utcnow
from kibitz.services.chat.replies.repository import ReplyJobRepository
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.service import ChatService
from kibitz.services.chat.tree.repository import TreeRepository

SLOW = "[sim:tokens=40] [sim:gap-ms=25]"


async def first_deltas(response: httpx.Response, count: int) -> list[SseEvent]:
    """Read a stream until `count` deltas have arrived."""
    seen = 0

    def enough(event: SseEvent) -> bool:
        nonlocal seen
        seen += event.event == "message.delta"
        return seen >= count

    return await read_sse(response, until=enough)


async def test_subscribers_get_deltas_in_order_before_the_completion(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        events = await read_sse(stream, until=reply_finished(reply_id))
    names = [e.event for e in events]
    assert names[:2] == ["message.created", "message.created"]
    assert names[-1] == "message.completed"
    deltas = [e for e in events if e.event == "message.delta"]
    assert len(deltas) == 40
    offsets = [e.data["offset"] for e in deltas]
    assert offsets == sorted(offsets)
    assert streamed_text(events, reply_id) == events[-1].data["content"]
    # Streamed, not buffered: the deltas were spread over the reply's ~1 s.
    assert deltas[-1].at - deltas[0].at > 0.3


async def test_two_subscribers_see_the_same_events(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as one, world.stream(alice, chat_id) as two:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        until = reply_finished(body["agent_message"]["id"])
        first, second = await asyncio.gather(read_sse(one, until=until), read_sse(two, until=until))
    assert [(e.event, e.id, e.data) for e in first] == [(e.event, e.id, e.data) for e in second]


async def test_reconnecting_with_last_event_id_resumes_exactly(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        before = await first_deltas(stream, 5)
    await asyncio.sleep(0.2)  # deltas stream on while nobody listens
    async with world.stream(alice, chat_id, last_event_id=before[-1].id) as stream:
        after = await read_sse(stream, until=reply_finished(reply_id))
    final = after[-1].data["content"]
    assert streamed_text(before, reply_id) + streamed_text(after, reply_id) == final
    assert not [e for e in after if e.event == "message.created"]
    ids = [e.id for e in before + after]
    assert len(ids) == len(set(ids))


async def test_a_new_subscriber_mid_reply_gets_what_streamed_then_the_rest(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, f"go {SLOW}")).json()
    reply_id = body["agent_message"]["id"]
    await asyncio.sleep(0.4)
    async with world.stream(alice, body["chat_id"]) as stream:
        events = await read_sse(stream, until=reply_finished(reply_id))
    assert events[0].event == "message.created"
    assert streamed_text(events, reply_id) == events[-1].data["content"]


async def test_resuming_after_the_reply_finished_sends_its_rest_and_end(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "go [sim:tokens=5]")).json()
    reply_id, chat_id = body["agent_message"]["id"], body["chat_id"]
    reply = await world.wait_finished(alice, chat_id, reply_id)
    async with world.stream(alice, chat_id, last_event_id=f"{reply_id}:3") as stream:
        events = await read_sse(stream, until=reply_finished(reply_id))
    assert [e.event for e in events] == ["message.delta", "message.completed"]
    assert events[0].data["content"] == reply["content"][3:]


async def test_the_sender_disconnecting_does_not_stop_the_reply(world: World) -> None:
    alice = await world.member()
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": f"go {SLOW}", "agent_id": alice.agent_id},
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        events = await first_deltas(response, 2)
    chat_id, reply_id = events[0].data["chat_id"], events[1].data["id"]
    reply = await world.wait_finished(alice, chat_id, reply_id)
    assert reply["status"] == "complete"
    assert reply["output_tokens"] == 40


async def test_stop_keeps_what_streamed_and_marks_it_stopped(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        body = (
            await world.send(alice, "go [sim:tokens=200] [sim:gap-ms=20]", chat_id=chat_id)
        ).json()
        reply_id = body["agent_message"]["id"]
        await first_deltas(stream, 5)
        stopped = await world.http.post(
            world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
        )
        rest = await read_sse(stream, until=reply_finished(reply_id))
    assert stopped.status_code == 200, stopped.text
    message = stopped.json()
    assert message["status"] == "stopped"
    assert 5 <= len(message["content"].split()) < 200
    assert rest[-1].event == "message.completed"
    assert rest[-1].data["status"] == "stopped"
    stored = await world.wait_finished(alice, chat_id, reply_id)
    assert stored["content"] == message["content"]
    again = await world.http.post(
        world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
    )
    # The message as history shows it, less the ids of its alternatives (a history field).
    assert again.json() == {key: value for key, value in stored.items() if key != "sibling_ids"}


async def test_a_user_message_cannot_be_stopped(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "hi")).json()
    response = await world.http.post(
        world.url(f"/chat/messages/{body['user_message']['id']}/stop"), headers=alice.headers
    )
    assert response.status_code == 409


async def test_an_upstream_failure_after_k_tokens_leaves_a_failed_message_with_them(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:
        content = "go [sim:tokens=20] [sim:fault=disconnect-after:7]"
        body = (await world.send(alice, content, chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        events = await read_sse(stream, until=reply_finished(reply_id))
    assert events[-1].event == "message.failed"
    failed = events[-1].data
    assert failed["status"] == "failed"
    assert failed["error"]
    assert len(failed["content"].split()) == 7
    assert streamed_text(events, reply_id) == failed["content"]
    stored = await world.wait_finished(alice, chat_id, reply_id)
    assert stored["status"] == "failed"
    assert stored["content"] == failed["content"]


async def test_an_upstream_refusal_before_any_token_fails_the_reply_with_the_reason(
    world: World,
) -> None:
    alice = await world.member()
    body = (await world.send(alice, "go [sim:fault=400]")).json()
    reply = await world.wait_finished(alice, body["chat_id"], body["agent_message"]["id"])
    assert reply["status"] == "failed"
    assert reply["content"] == ""
    assert reply["error"]


async def test_partial_content_is_stored_while_the_reply_streams(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "go [sim:tokens=60] [sim:gap-ms=25]")).json()
    await asyncio.sleep(1.0)
    history = await world.http.get(
        world.url(f"/chat/history/{body['chat_id']}"), headers=alice.headers
    )
    reply = history.json()["messages"][-1]
    assert reply["status"] == "streaming"
    assert 0 < len(reply["content"].split()) < 60
    await world.wait_finished(alice, body["chat_id"], body["agent_message"]["id"])


async def test_deleting_a_chat_stops_its_reply(world: World) -> None:
    alice = await world.member()
    body = (await world.send(alice, "go [sim:tokens=200] [sim:gap-ms=20]")).json()
    await asyncio.sleep(0.2)
    deleted = await world.http.delete(
        world.url(f"/chat/chats/{body['chat_id']}"), headers=alice.headers
    )
    assert deleted.status_code == 204
    await asyncio.sleep(0.3)
    outcome = world.simulator.requests[-1]["outcome"]
    assert outcome != "completed"


async def test_a_finished_reply_is_published_with_its_usage(world: World) -> None:
    received: list[EventEnvelope] = []

    async def handler(envelope: EventEnvelope) -> None:
        received.append(envelope)

    await world.stack.running.platform.bus.subscribe(
        ["chat.message_completed"], group="test-chat-usage", handler=handler
    )
    alice = await world.member()
    body = (await world.send(alice, "go [sim:tokens=9]")).json()
    reply_id = body["agent_message"]["id"]
    await world.wait_finished(alice, body["chat_id"], reply_id)
    for _ in range(100):
        if any(e.payload["message_id"] == reply_id for e in received):
            break
        await asyncio.sleep(0.05)
    event = next(e for e in received if e.payload["message_id"] == reply_id)
    assert event.payload["output_tokens"] == 9
    assert event.payload["status"] == "complete"
    assert event.payload["tenant_id"] == alice.account.tenant_id
    assert event.payload["agent_id"] == alice.agent_id


async def message_count(world: World, member: Member, chat_id: str) -> int:
    response = await world.http.get(
        world.url(f"/chat/history/{chat_id}"), params={"limit": 200}, headers=member.headers
    )
    return len(response.json()["messages"])


async def test_the_same_idempotency_key_returns_the_first_answer(world_on: World) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    key = {"Idempotency-Key": new_key()}
    first = await world.send(alice, "once", chat_id=chat_id, headers=key)
    second = await world.send(alice, "once", chat_id=chat_id, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    await world.wait_finished(alice, chat_id, first.json()["agent_message"]["id"])
    assert await message_count(world, alice, chat_id) == 4


async def test_the_same_key_with_a_different_body_is_422(world: World) -> None:
    alice = await world.member()
    key = {"Idempotency-Key": new_key()}
    assert (await world.send(alice, "once", headers=key)).status_code == 201
    other = await world.send(alice, "something else", headers=key)
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reused")


async def test_idempotency_keys_belong_to_one_user(world: World) -> None:
    alice, bob = await world.member(), await world.member()
    key = {"Idempotency-Key": new_key()}
    first = await world.send(alice, "same words", headers=key)
    second = await world.send(bob, "same words", headers=key)
    assert second.status_code == 201
    assert second.json()["chat_id"] != first.json()["chat_id"]


async def test_twenty_concurrent_sends_with_one_key_store_one_message_and_one_reply(
    world_on: World,
) -> None:
    world = world_on
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    key = {"Idempotency-Key": new_key()}
    answers = await asyncio.gather(
        *(world.send(alice, "exactly once", chat_id=chat_id, headers=key) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    await world.wait_finished(alice, chat_id, answers[0].json()["agent_message"]["id"])
    assert await message_count(world, alice, chat_id) == 4
    prompts = [r for r in world.simulator.requests if "exactly once" in json.dumps(r["body"])]
    assert len(prompts) == 1


async def test_a_streamed_retry_with_the_same_key_replays_the_reply(world: World) -> None:
    alice = await world.member()
    key = new_key()
    first = await world.send(alice, "go [sim:tokens=6]", headers={"Idempotency-Key": key})
    reply_id = first.json()["agent_message"]["id"]
    async with world.http.stream(
        "POST",
        world.url("/chat/send"),
        json={"content": "go [sim:tokens=6]", "agent_id": alice.agent_id},
        headers={**alice.headers, "Accept": "text/event-stream", "Idempotency-Key": key},
    ) as response:
        assert response.status_code == 201
        events = await read_sse(response)
    assert events[0].data["id"] == first.json()["user_message"]["id"]
    assert streamed_text(events, reply_id) == events[-1].data["content"]
    assert len(events[-1].data["content"].split()) == 6


async def test_a_key_past_its_window_is_new_again(tmp_path: Path) -> None:
    async with chat_world(tmp_path, env={"KIBITZ_CHAT_IDEMPOTENCY_TTL_SECONDS": "1"}) as world:
        alice = await world.member()
        chat_id = await world.new_chat(alice)
        key = {"Idempotency-Key": new_key()}
        first = await world.send(alice, "once", chat_id=chat_id, headers=key)
        await world.wait_finished(alice, chat_id, first.json()["agent_message"]["id"])
        await asyncio.sleep(1.1)
        # Past the window the key is forgotten: a different body is no longer a misuse of it.
        again = await world.send(alice, "a new question", chat_id=chat_id, headers=key)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert again.json()["user_message"]["id"] != first.json()["user_message"]["id"]
        await world.wait_finished(alice, chat_id, again.json()["agent_message"]["id"])
        assert await message_count(world, alice, chat_id) == 6


async def test_concurrent_replies_per_user_are_capped(tmp_path: Path) -> None:
    env = {"KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS": "1"}
    async with chat_world(tmp_path, env=env) as world:
        alice = await world.member()
        first = await world.send(alice, "go [sim:tokens=30] [sim:gap-ms=20]")
        key = {"Idempotency-Key": new_key()}
        second = await world.send(alice, "and this", headers=key)
        assert second.status_code == 429
        assert second.headers["retry-after"]
        await world.wait_finished(
            alice, first.json()["chat_id"], first.json()["agent_message"]["id"]
        )
        # A refused first attempt does not hold the key: the retry goes through.
        assert (await world.send(alice, "and this", headers=key)).status_code == 201


async def test_idle_streams_get_heartbeat_comments(tmp_path: Path) -> None:
    async with chat_world(tmp_path, env={"KIBITZ_CHAT_HEARTBEAT_SECONDS": "0.2"}) as world:
        alice = await world.member()
        chat_id = (await world.send(alice, "hi [sim:tokens=1]")).json()["chat_id"]
        async with world.stream(alice, chat_id) as stream:
            lines: list[str] = []
            async for line in stream.aiter_lines():
                lines.append(line)
                if line.startswith(": heartbeat"):
                    break
        assert ": heartbeat" in lines


def plans_file(tmp_path: Path, messages_per_day: int) -> Path:
    shipped = Path(__file__).parents[3] / "src/kibitz/services/tenants/plans.json"
    catalogue = json.loads(shipped.read_text())
    for plan in catalogue["plans"]:
        if plan["id"] == "basic":
            plan["limits"]["messages_per_day"] = messages_per_day
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(catalogue))
    return path


@pytest.fixture
async def small_plan_world(tmp_path: Path) -> Any:
    env = {"KIBITZ_TENANTS_PLANS_FILE": str(plans_file(tmp_path, 3))}
    async with chat_world(tmp_path, env=env) as world:
        yield world


async def test_the_message_after_the_daily_limit_is_429_naming_it(small_plan_world: World) -> None:
    world = small_plan_world
    alice = await world.member()
    for _ in range(3):
        assert (await world.send(alice, "hi [sim:tokens=1]")).status_code == 201
    refused = await world.send(alice, "one too many")
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"]
    problem = refused.json()
    assert problem["limit"] == "messages_per_day"
    assert "messages_per_day" in problem["detail"] or "messages" in problem["detail"]
    upgraded = await world.http.post(
        world.url("/tenants/subscribe"), json={"plan": "premium"}, headers=alice.headers
    )
    assert upgraded.status_code == 200, upgraded.text
    assert (await world.send(alice, "after the upgrade")).status_code == 201


async def test_with_one_message_left_ten_concurrent_sends_let_one_through(
    small_plan_world: World,
) -> None:
    world = small_plan_world
    alice = await world.member()
    for _ in range(2):
        sent = await world.send(alice, "hi [sim:tokens=1]")
        assert sent.status_code == 201
        await world.wait_finished(alice, sent.json()["chat_id"], sent.json()["agent_message"]["id"])
    answers = await asyncio.gather(*(world.send(alice, f"race {i}") for i in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 429}


# -- the agent is asked from the stored messages, once, after the send is checked ------------


def chat_service(world: World) -> ChatService:
    service: ChatService = world.stack.running.apps["chat"].state.chat_service
    return service


def asked_with(request: dict[str, Any]) -> list[str]:
    """The conversation a simulator request carried (without the instructions)."""
    return [m["content"] for m in request["body"]["messages"] if m["role"] != "system"]


async def test_a_send_to_a_chat_asks_the_agent_once_with_its_history(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    first_reply = world.simulator.requests[-1]
    asked = len(world.simulator.requests)
    body = (await world.send(alice, "again [sim:tokens=2]", chat_id=chat_id)).json()
    reply = await world.wait_finished(alice, chat_id, body["agent_message"]["id"])
    assert reply["status"] == "complete"
    assert len(world.simulator.requests) == asked + 1  # asked once
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    earlier_reply = history.json()["messages"][1]["content"]
    assert asked_with(world.simulator.requests[-1]) == [
        *asked_with(first_reply),
        earlier_reply,
        "again [sim:tokens=2]",
    ]


async def test_a_chat_written_to_elsewhere_is_answered_from_the_stored_messages(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    service = chat_service(world)
    # Another chat process adds an exchange this one never saw.
    async with service.database.transaction() as session:
        chat = await ChatRepository(session).get_chat_by_id(uuid.UUID(chat_id))
        assert chat is not None
        now = utcnow()
        common = {
            "chat_id": chat.id,
            "tenant_id": chat.tenant_id,
            "user_id": chat.user_id,
            "status": "complete",
            "input_tokens": 0,
            "output_tokens": 0,
            "created_at": now,
            "updated_at": now,
        }
        # After the chat's last message, as a send there stored it.
        leaf = await TreeRepository(session).newest_leaf(chat.id)
        asked_id = new_id()
        await ChatRepository(session).insert_messages(
            [
                Message(
                    id=asked_id, parent_id=leaf, sender="user", content="asked elsewhere", **common
                ),
                Message(
                    id=new_id(),
                    parent_id=asked_id,
                    sender="agent",
                    content="answered elsewhere",
                    **common,
                ),
            ]
        )
    content = "and here? [sim:tokens=3] [sim:ttft-ms=200]"
    body = (await world.send(alice, content, chat_id=chat_id)).json()
    reply = await world.wait_finished(alice, chat_id, body["agent_message"]["id"])
    assert reply["status"] == "complete"
    asked = [r for r in world.simulator.requests if asked_with(r)[-1] == content]
    assert len(asked) == 1  # never asked from anything but the stored messages
    assert asked[0]["outcome"] == "completed"
    assert asked_with(asked[0])[-3:] == ["asked elsewhere", "answered elsewhere", content]


async def test_a_chat_deleted_elsewhere_answers_404_and_asks_no_agent(world: World) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with chat_service(world).database.transaction() as session:
        chat = await ChatRepository(session).get_chat_by_id(uuid.UUID(chat_id))
        assert chat is not None
        await ChatRepository(session).delete_chat(chat)
    content = "still there? [sim:ttft-ms=200]"
    refused = await world.send(alice, content, chat_id=chat_id)
    assert refused.status_code == 404, refused.text
    await asyncio.sleep(0.3)  # an agent asked anyway would have answered by now
    assert not [r for r in world.simulator.requests if asked_with(r)[-1] == content]
    history = await world.http.get(world.url(f"/chat/history/{chat_id}"), headers=alice.headers)
    assert history.status_code == 404


# -- metering whatever the ending (issue 15, finding 16) ----------------------------------------


async def usage(world: World, member: Member) -> dict[str, int]:
    """The tenant's counters, once the metering events have been handled."""
    response = await world.http.get(world.url("/tenants/usage"), headers=member.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {"messages": body["messages"]["used"], "tokens": body["tokens"]["used"]}


async def settled_usage(world: World, member: Member, until: Any) -> dict[str, int]:
    """Poll the counters until `until(counters)` (events are relayed asynchronously)."""
    for _ in range(100):
        counters = await usage(world, member)
        if until(counters):
            return counters
        await asyncio.sleep(0.05)
    return await usage(world, member)


async def test_a_stopped_reply_meters_what_streamed_and_keeps_its_message_counted(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    before = await settled_usage(world, alice, lambda c: c["tokens"] > 0)
    async with world.stream(alice, chat_id) as stream:
        body = (await world.send(alice, f"go {SLOW}", chat_id=chat_id)).json()
        reply_id = body["agent_message"]["id"]
        await first_deltas(stream, 5)
        stopped = await world.http.post(
            world.url(f"/chat/messages/{reply_id}/stop"), headers=alice.headers
        )
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["output_tokens"] > 0
    after = await settled_usage(world, alice, lambda c: c["tokens"] > before["tokens"])
    assert after["tokens"] > before["tokens"]
    assert after["messages"] == before["messages"] + 1  # not refunded


async def test_a_reply_failed_before_its_first_token_gives_its_message_back(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    before = await settled_usage(world, alice, lambda c: c["tokens"] > 0)
    body = (await world.send(alice, "fails at once [sim:fault=400]", chat_id=chat_id)).json()
    failed = await world.wait_finished(alice, chat_id, body["agent_message"]["id"])
    assert failed["status"] == "failed" and failed["content"] == ""
    await asyncio.sleep(0.3)
    after = await settled_usage(world, alice, lambda c: c["messages"] == before["messages"])
    assert after == before


async def test_a_reply_failed_after_some_tokens_meters_them_and_keeps_its_message(
    world: World,
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    before = await settled_usage(world, alice, lambda c: c["tokens"] > 0)
    content = "go [sim:tokens=20] [sim:fault=disconnect-after:7]"
    body = (await world.send(alice, content, chat_id=chat_id)).json()
    failed = await world.wait_finished(alice, chat_id, body["agent_message"]["id"])
    assert failed["status"] == "failed" and failed["content"]
    assert failed["output_tokens"] > 0
    after = await settled_usage(world, alice, lambda c: c["tokens"] > before["tokens"])
    assert after["tokens"] > before["tokens"]
    assert after["messages"] == before["messages"] + 1


async def test_a_send_whose_store_fails_after_its_reservation_gives_the_message_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    before = await settled_usage(world, alice, lambda c: c["tokens"] > 0)

    async def failing_add(self: ReplyJobRepository, **_: Any) -> None:
        await asyncio.sleep(0.3)  # the reservation is granted meanwhile
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(ReplyJobRepository, "add", failing_add)
    failed = await world.send(alice, "never stored", chat_id=chat_id)
    monkeypatch.undo()
    assert failed.status_code == 500, failed.text
    assert await message_count(world, alice, chat_id) == 2  # the first exchange only
    after = await settled_usage(world, alice, lambda c: c["messages"] == before["messages"])
    assert after == before
