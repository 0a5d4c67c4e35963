"""Anthropic agents through the official SDK, against the simulator's messages API."""

from __future__ import annotations

import anthropic
import pytest

from kibitz.services.agents.providers.anthropic_messages import AnthropicMessages
from kibitz.services.agents.providers.base import (
    CompletionRequest,
    ProviderError,
    StreamEnd,
    StreamStart,
    TextDelta,
    ToolCall,
    ToolSpec,
    Turn,
)
from tests.fixtures.simulator import RunningSimulator
from tests.services.agents.conftest import DEPLOYMENT_ANTHROPIC_KEY, AgentsApi, assert_problem


async def test_anthropic_agent_answers_with_system_prompt_and_temperature_on_the_wire(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account,
        llm_provider="anthropic",
        model="claude-haiku-4-5",
        instructions="You are terse.",
        temperature=0.9,
    )
    response = await api.respond(account, agent["id"], content="Describe the sea")
    assert response.status_code == 200, response.text
    reply = response.json()
    assert (
        "at temperature 0.9." in reply["content"] and "System: You are terse." in reply["content"]
    )
    assert reply["finish_reason"] == "end_turn" and reply["model"] == "claude-haiku-4-5"
    assert reply["usage"] == {"input_tokens": 6, "output_tokens": len(reply["content"].split())}
    wire = sim.requests[-1]
    assert (
        wire["api"] == "anthropic"
        and wire["headers"]["authorization"] == f"Bearer {DEPLOYMENT_ANTHROPIC_KEY}"
    )
    assert wire["body"]["system"] == "You are terse." and wire["body"]["temperature"] == 0.9
    assert wire["body"]["messages"] == [{"role": "user", "content": "Describe the sea"}]
    assert wire["body"]["max_tokens"] == 1024


async def test_anthropic_agent_streams_deltas_then_done(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account, llm_provider="anthropic", model="claude-haiku-4-5", instructions="Hi."
    )
    status, events = await api.stream(account, agent["id"], content="go [sim:tokens=9]")
    assert status == 200
    assert len([1 for name, _ in events if name == "delta"]) == 9
    assert events[-1] == (
        "done",
        {
            "usage": {"input_tokens": 3, "output_tokens": 9},
            "finish_reason": "end_turn",
            "model": "claude-haiku-4-5",
        },
    )
    assert sim.requests[-1]["body"]["stream"] is True and sim.requests[-1]["outcome"] == "completed"


@pytest.mark.parametrize(
    ("fault", "status", "problem_type"),
    [
        ("401", 502, "llm-rejected"),
        ("500", 502, "llm-unavailable"),
        ("429", 503, "llm-rate-limited"),
    ],
)
async def test_anthropic_errors_are_mapped_to_problems(
    agents_sqlite: AgentsApi, fault: str, status: int, problem_type: str
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="anthropic", model="claude-haiku-4-5")
    for stream in (False, True):
        response = await api.respond(
            account, agent["id"], content=f"x [sim:fault={fault}]", stream=stream
        )
        assert assert_problem(response, status)["type"].endswith(problem_type)


async def test_adapter_merges_system_turns_and_reports_max_tokens(sim: RunningSimulator) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=sim.url, max_retries=0)
    adapter = AnthropicMessages(client)
    request = CompletionRequest(
        model="claude-haiku-4-5",
        instructions="Base.",
        temperature=0.1,
        messages=[Turn("system", "Extra."), Turn("user", "one two three [sim:tokens=8]")],
        max_output_tokens=5,
    )
    for streamed in (True, False):
        items = [item async for item in adapter.stream(request, streamed=streamed)]
        end = items[-1]
        assert (
            isinstance(end, StreamEnd)
            and end.finish_reason == "max_tokens"
            and end.output_tokens == 5
        )
        assert len("".join(i.text for i in items if isinstance(i, TextDelta)).split()) == 5
        body = sim.requests[-1]["body"]
        assert body["system"] == "Base.\n\nExtra." and body["messages"] == [
            {"role": "user", "content": "one two three [sim:tokens=8]"}
        ]
    no_temperature = AnthropicMessages(client, send_temperature=False)
    _ = [item async for item in no_temperature.stream(request, streamed=False)]
    assert "temperature" not in sim.requests[-1]["body"]
    await client.close()


async def test_adapter_maps_a_cut_stream_to_an_unavailable_error(sim: RunningSimulator) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=sim.url, max_retries=0)
    request = CompletionRequest(
        model="claude-haiku-4-5",
        instructions="",
        temperature=1,
        messages=[Turn("user", "a b c d e [sim:fault=disconnect-after:3]")],
    )
    received = []
    with pytest.raises(ProviderError) as caught:
        async for item in AnthropicMessages(client).stream(request):
            received.append(item)
    assert isinstance(received[0], StreamStart)
    assert len(received[1:]) == 3 and caught.value.kind == "unavailable" and caught.value.retryable
    await client.close()


ASK_TOOL = ToolSpec(
    name="ask_researcher",
    description="Ask the researcher agent.",
    parameters={"type": "object", "properties": {"task": {"type": "string"}}},
)


@pytest.mark.parametrize("streamed", [True, False])
async def test_adapter_reports_a_tool_use_with_its_input_assembled(
    sim: RunningSimulator, streamed: bool
) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=sim.url, max_retries=0)
    request = CompletionRequest(
        model="claude-haiku-4-5",
        instructions="Delegate.",
        temperature=0.2,
        messages=[
            Turn(
                "user",
                'Plan it [sim:tool=ask_researcher;args={"task": "find the five oldest maps"}]',
            )
        ],
        tools=(ASK_TOOL,),
    )
    items = [item async for item in AnthropicMessages(client).stream(request, streamed=streamed)]
    calls = [item for item in items if isinstance(item, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "ask_researcher"
    assert calls[0].arguments == {"task": "find the five oldest maps"}
    assert calls[0].id.startswith("toolu_")
    end = items[-1]
    # Anthropic's `tool_use` stop reason is reported as the one neutral `tool_calls`.
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    assert sim.requests[-1]["body"]["tools"] == [
        {
            "name": "ask_researcher",
            "description": "Ask the researcher agent.",
            "input_schema": ASK_TOOL.parameters,
        }
    ]
    if streamed:  # the input crossed the wire as several input_json_delta pieces
        assert sim.requests[-1]["tokens_sent"] > 2
    await client.close()


@pytest.mark.parametrize("streamed", [True, False])
async def test_adapter_sends_tool_use_and_tool_result_blocks_back(
    sim: RunningSimulator, streamed: bool
) -> None:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=sim.url, max_retries=0)
    first = ToolCall("toolu_01", "ask_researcher", {"task": "maps"})
    second = ToolCall("toolu_02", "ask_researcher", {"task": "globes"})
    request = CompletionRequest(
        model="claude-haiku-4-5",
        instructions="",
        temperature=0.2,
        messages=[
            Turn("user", "Plan it [sim:tool=ask_researcher]"),
            Turn("assistant", "Asking.", tool_calls=(first, second)),
            Turn("tool", "Maps: the Tabula Rogeriana.", tool_call_id="toolu_01"),
            Turn("tool", "Globes: the Erdapfel.", tool_call_id="toolu_02"),
        ],
        tools=(ASK_TOOL,),
    )
    items = [item async for item in AnthropicMessages(client).stream(request, streamed=streamed)]
    text = "".join(item.text for item in items if isinstance(item, TextDelta))
    assert "[toolu_01] Maps: the Tabula Rogeriana." in text
    assert "[toolu_02] Globes: the Erdapfel." in text
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "end_turn"
    messages = sim.requests[-1]["body"]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Asking."},
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "ask_researcher",
                "input": {"task": "maps"},
            },
            {
                "type": "tool_use",
                "id": "toolu_02",
                "name": "ask_researcher",
                "input": {"task": "globes"},
            },
        ],
    }
    # Both results share one user message, as the messages API wants them.
    assert messages[2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": "Maps: the Tabula Rogeriana.",
            },
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": "Globes: the Erdapfel."},
        ],
    }
    assert len(messages) == 3
    await client.close()
