"""Chat's reading of an agent's streamed reply, against the real agents service and the
simulator: tools offered, the model's calls reported, the conversation continued with results."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.services.chat.world import Member, World, chat_world

from kibitz.kit.http import ServiceClient
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import utcnow
from kibitz.services.chat.replies.agent_stream import ReplyFailedError, ReplyProgress, read_reply
from kibitz.services.chat.replies.orders import ReplyOrder

ASK_TOOL = {
    "name": "ask_researcher",
    "description": "Ask the researcher agent.",
    "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
}
SCRIPTED_CALL = 'Plan it [sim:tool=ask_researcher;args={"task": "find old maps"}]'


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The stack; both official APIs are the simulator."""
    async with chat_world(tmp_path) as running:
        yield running


async def _agent(world: World, member: Member, provider: str, model: str) -> str:
    response = await world.http.post(
        world.url("/agents/create"),
        headers=member.headers,
        json={"name": "Lead", "llm_provider": provider, "model": model, "instructions": "Lead."},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _order(member: Member, agent_id: str, content: str) -> ReplyOrder:
    return ReplyOrder(
        message_id=new_id(),
        user_message_id=new_id(),
        chat_id=new_id(),
        tenant_id=new_id(),
        user_id=new_id(),
        agent_id=uuid.UUID(agent_id),
        context=[{"role": "user", "content": content}],
        access_token=member.account.access_token,
        request_id=None,
        created_at=utcnow(),
    )


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")]
)
async def test_a_reply_offered_tools_reports_the_calls_and_continues_with_their_results(
    world: World, provider: str, model: str
) -> None:
    member = await world.member()
    order = _order(member, await _agent(world, member, provider, model), SCRIPTED_CALL)
    agents = ServiceClient("agents", [world.stack.url("agents")])
    try:
        progress, deltas = ReplyProgress(), list[str]()

        async def on_delta(text: str) -> None:
            deltas.append(text)

        await read_reply(agents, order, progress, on_delta, tools=[ASK_TOOL])
        (call,) = progress.tool_calls
        assert call["name"] == "ask_researcher" and call["arguments"] == {"task": "find old maps"}
        assert call["id"] and progress.finish_reason == "tool_calls" and deltas == []
        first_input = progress.input_tokens
        assert first_input > 0
        wire = world.simulator.requests[-1]["body"]
        assert [tool.get("name") or tool["function"]["name"] for tool in wire["tools"]] == [
            "ask_researcher"
        ]

        messages = [
            *order.context,
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "The Tabula Rogeriana."},
        ]
        await read_reply(agents, order, progress, on_delta, messages=messages, tools=[ASK_TOOL])
        assert progress.tool_calls == []
        assert f"[{call['id']}] The Tabula Rogeriana." in "".join(deltas)
        # Usage adds up over the calls of one reply.
        assert progress.input_tokens > first_input
    finally:
        await agents.aclose()


async def test_an_echo_agent_offered_tools_fails_the_reply_naming_why(world: World) -> None:
    member = await world.member()
    order = _order(member, await _agent(world, member, "echo", "echo"), "hello")
    agents = ServiceClient("agents", [world.stack.url("agents")])

    async def on_delta(text: str) -> None:
        raise AssertionError("nothing streams")

    try:
        with pytest.raises(ReplyFailedError) as failed:
            await read_reply(agents, order, ReplyProgress(), on_delta, tools=[ASK_TOOL])
        assert "cannot call tools" in failed.value.detail
    finally:
        await agents.aclose()
