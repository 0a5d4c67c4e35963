"""OpenAI and custom (OpenAI-compatible) agents through the official SDK, against the simulator."""

from __future__ import annotations

import openai
import pytest

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
from kibitz.services.agents.providers.openai_chat import OpenAIChat
from tests.fixtures.simulator import RunningSimulator
from tests.services.agents.conftest import DEPLOYMENT_OPENAI_KEY, AgentsApi, assert_problem


def last_body(sim: RunningSimulator) -> dict:
    return dict(sim.requests[-1]["body"])


async def test_openai_agent_answers_with_usage_and_sends_instructions_and_temperature(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account,
        llm_provider="openai",
        model="gpt-4o-mini",
        instructions="Answer like a pirate.",
        temperature=0.35,
    )
    response = await api.respond(account, agent["id"], content="Where is the treasure?")
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["content"].startswith("Simulated reply from gpt-4o-mini at temperature 0.35.")
    assert "System: Answer like a pirate." in reply["content"]
    assert reply["usage"]["input_tokens"] == 8 and reply["usage"]["output_tokens"] > 5
    assert reply["finish_reason"] == "stop" and reply["model"] == "gpt-4o-mini"
    wire = sim.requests[-1]
    assert (
        wire["api"] == "openai"
        and wire["headers"]["authorization"] == f"Bearer {DEPLOYMENT_OPENAI_KEY}"
    )
    assert wire["body"]["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert wire["body"]["messages"][-1] == {"role": "user", "content": "Where is the treasure?"}
    assert wire["body"]["temperature"] == 0.35
    assert not wire["body"].get("stream")


async def test_openai_agent_streams_deltas_then_done_with_usage(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account, llm_provider="openai", model="gpt-4.1-mini", instructions="Be brief."
    )
    status, events = await api.stream(account, agent["id"], content="count [sim:tokens=12]")
    assert status == 200
    deltas = [data["content"] for name, data in events if name == "delta"]
    assert len(deltas) == 12
    name, done = events[-1]
    assert name == "done"
    assert done == {
        "usage": {"input_tokens": 4, "output_tokens": 12},
        "finish_reason": "stop",
        "model": "gpt-4.1-mini",
    }
    body = last_body(sim)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["content"] == "Be brief."


async def test_custom_agent_calls_its_own_endpoint_with_its_own_key(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account,
        llm_provider="custom",
        model="llama3.1:8b",
        base_url=sim.openai_base_url,
        api_key="sk-my-own-ollama-key",
        temperature=1.25,
        instructions="You are local.",
    )
    response = await api.respond(account, agent["id"])
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "llama3.1:8b"
    wire = sim.requests[-1]
    assert wire["headers"]["authorization"] == "Bearer sk-my-own-ollama-key"
    assert wire["body"]["temperature"] == 1.25 and wire["body"]["model"] == "llama3.1:8b"
    status, events = await api.stream(account, agent["id"])
    assert status == 200 and events[-1][0] == "done"


async def test_a_users_own_openai_key_replaces_the_deployments(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(
        account, llm_provider="openai", model="gpt-4o-mini", api_key="sk-user-owned-777"
    )
    assert (await api.respond(account, agent["id"])).status_code == 200
    assert sim.requests[-1]["headers"]["authorization"] == "Bearer sk-user-owned-777"


@pytest.mark.parametrize(
    ("fault", "status", "problem_type"),
    [
        ("401", 502, "llm-rejected"),
        ("400", 502, "llm-rejected"),
        ("500", 502, "llm-unavailable"),
        ("429", 503, "llm-rate-limited"),
    ],
)
async def test_openai_errors_are_mapped_to_problems(
    agents_sqlite: AgentsApi, fault: str, status: int, problem_type: str
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    for stream in (False, True):
        response = await api.respond(
            account, agent["id"], content=f"fail [sim:fault={fault}]", stream=stream
        )
        problem = assert_problem(response, status)
        assert problem["type"].endswith(problem_type)
        assert "simulated" not in problem["detail"]  # upstream text never leaks
        if status == 503:
            assert int(response.headers["retry-after"]) >= 1


async def test_adapter_streams_and_not_through_the_sdk(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sim.openai_base_url, max_retries=0)
    adapter = OpenAIChat(client)
    request = CompletionRequest(
        model="gpt-4o-mini",
        instructions="Sys.",
        temperature=0.5,
        messages=[
            Turn("user", "one two"),
            Turn("assistant", "three"),
            Turn("user", "four [sim:tokens=4]"),
        ],
        max_output_tokens=3,
    )
    for streamed in (True, False):
        items = [item async for item in adapter.stream(request, streamed=streamed)]
        text = "".join(item.text for item in items if isinstance(item, TextDelta))
        end = items[-1]
        assert isinstance(end, StreamEnd)
        assert len(text.split()) == 3 and end.output_tokens == 3 and end.finish_reason == "length"
        assert end.input_tokens == 6
        assert sim.requests[-1]["body"]["max_completion_tokens"] == 3
    await client.close()


async def test_adapter_classifies_sdk_errors(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sim.openai_base_url, max_retries=0)
    adapter = OpenAIChat(client)
    expected = {
        "429": "rate_limited",
        "500": "unavailable",
        "503": "unavailable",
        "401": "credentials",
        "400": "rejected",
    }
    for fault, kind in expected.items():
        request = CompletionRequest(
            model="m",
            instructions="",
            temperature=1,
            messages=[Turn("user", f"[sim:fault={fault}]")],
        )
        with pytest.raises(ProviderError) as caught:
            async for _ in adapter.stream(request):
                pass
        assert caught.value.kind == kind and caught.value.status == int(fault)
        assert caught.value.retryable == (kind in ("rate_limited", "unavailable"))
    request = CompletionRequest(
        model="m",
        instructions="",
        temperature=1,
        messages=[Turn("user", "a b c d [sim:fault=disconnect-after:2]")],
    )
    received = []
    with pytest.raises(ProviderError) as caught:
        async for item in adapter.stream(request):
            received.append(item)
    assert isinstance(received[0], StreamStart)  # the provider accepted before it broke
    assert len(received[1:]) == 2 and caught.value.kind == "unavailable"
    await client.close()


ASK_TOOL = ToolSpec(
    name="ask_researcher",
    description="Ask the researcher agent.",
    parameters={"type": "object", "properties": {"task": {"type": "string"}}},
)


@pytest.mark.parametrize("streamed", [True, False])
async def test_adapter_reports_a_scripted_tool_call_with_its_arguments_assembled(
    sim: RunningSimulator, streamed: bool
) -> None:
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sim.openai_base_url, max_retries=0)
    request = CompletionRequest(
        model="gpt-4o-mini",
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
    items = [item async for item in OpenAIChat(client).stream(request, streamed=streamed)]
    calls = [item for item in items if isinstance(item, ToolCall)]
    assert len(calls) == 1 and calls[0].name == "ask_researcher"
    assert calls[0].arguments == {"task": "find the five oldest maps"}
    assert calls[0].id.startswith("call_")
    assert not [item for item in items if isinstance(item, TextDelta)]
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    wire = sim.requests[-1]["body"]
    assert wire["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "ask_researcher",
                "description": "Ask the researcher agent.",
                "parameters": ASK_TOOL.parameters,
            },
        }
    ]
    if streamed:  # the arguments crossed the wire in several pieces
        assert sim.requests[-1]["tokens_sent"] > 2
    await client.close()


@pytest.mark.parametrize("streamed", [True, False])
async def test_adapter_sends_tool_calls_and_results_back_as_tool_messages(
    sim: RunningSimulator, streamed: bool
) -> None:
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sim.openai_base_url, max_retries=0)
    call = ToolCall("call_abc123", "ask_researcher", {"task": "maps"})
    request = CompletionRequest(
        model="gpt-4o-mini",
        instructions="",
        temperature=0.2,
        messages=[
            Turn("user", "Plan it [sim:tool=ask_researcher]"),
            Turn("assistant", "", tool_calls=(call,)),
            Turn("tool", "The Tabula Rogeriana is among them.", tool_call_id="call_abc123"),
        ],
        tools=(ASK_TOOL,),
    )
    items = [item async for item in OpenAIChat(client).stream(request, streamed=streamed)]
    text = "".join(item.text for item in items if isinstance(item, TextDelta))
    assert "[call_abc123] The Tabula Rogeriana is among them." in text
    assert not [item for item in items if isinstance(item, ToolCall)]
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    messages = sim.requests[-1]["body"]["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "ask_researcher", "arguments": '{"task":"maps"}'},
            }
        ],
    }
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": "call_abc123",
        "content": "The Tabula Rogeriana is among them.",
    }
    await client.close()


async def test_adapter_reports_parallel_tool_calls_in_order(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sim.openai_base_url, max_retries=0)
    other = ToolSpec("ask_critic", "Ask the critic.", {"type": "object", "properties": {}})
    request = CompletionRequest(
        model="gpt-4o-mini",
        instructions="",
        temperature=0.2,
        messages=[
            Turn(
                "user",
                '[sim:tool=ask_researcher;args={"task":"a"}] '
                '[sim:tool=ask_critic;args={"task":"b"}]',
            )
        ],
        tools=(ASK_TOOL, other),
    )
    items = [item async for item in OpenAIChat(client).stream(request)]
    calls = [item for item in items if isinstance(item, ToolCall)]
    assert [(c.name, c.arguments) for c in calls] == [
        ("ask_researcher", {"task": "a"}),
        ("ask_critic", {"task": "b"}),
    ]
    assert len({c.id for c in calls}) == 2
    await client.close()
