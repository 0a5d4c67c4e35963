"""The simulator speaks OpenAI and Anthropic well enough for the official SDKs, unchanged."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from tests.fixtures.simulator import RunningSimulator, start_simulator
from tests.fixtures.tcp_proxy import free_port


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[RunningSimulator]:
    async with start_simulator() as running:
        yield running


@pytest.fixture
async def oai(sim: RunningSimulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=sim.openai_base_url, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(sim: RunningSimulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=sim.url, max_retries=0)
    yield client
    await client.close()


async def test_openai_completion_reflects_the_request(
    oai: openai.AsyncOpenAI, sim: RunningSimulator
) -> None:
    completion = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.3,
    )
    text = completion.choices[0].message.content or ""
    assert (
        text == "Simulated reply from gpt-4o-mini at temperature 0.3. "
        "System: Be brief. You said: hello there"
    )
    assert completion.usage is not None and completion.usage.prompt_tokens == 4
    assert completion.usage.completion_tokens == len(text.split())
    assert completion.choices[0].finish_reason == "stop" and completion.model == "gpt-4o-mini"
    assert sim.requests[-1]["body"]["temperature"] == 0.3


async def test_openai_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "go"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-sim-tokens": "6"},
    )
    chunks = [chunk async for chunk in stream]
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) == 6
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert (
        chunks[-1].choices == []
        and chunks[-1].usage is not None
        and chunks[-1].usage.completion_tokens == 6
    )


async def test_openai_stream_without_usage_and_max_tokens(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "go [sim:tokens=9]"}],
        stream=True,
        max_tokens=4,
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_anthropic_message_and_stream_event_sequence(
    claude: anthropic.AsyncAnthropic,
) -> None:
    message = await claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        system="Be kind.",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert message.content[0].type == "text" and "System: Be kind." in message.content[0].text
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 3
    stream = await claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "x [sim:tokens=3]"}],
        stream=True,
    )
    kinds = [event.type async for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    async with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
    ) as helper:
        text = [piece async for piece in helper.text_stream]
        final = await helper.get_final_message()
    assert len(text) == 2 and final.stop_reason == "max_tokens" and final.usage.output_tokens == 2


async def test_raw_anthropic_stream_includes_ping(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.url}/v1/messages",
            json={
                "model": "m",
                "max_tokens": 5,
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )
    events = [
        line[len("event: ") :] for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("fault", "openai_error", "anthropic_error"),
    [
        ("429", openai.RateLimitError, anthropic.RateLimitError),
        ("500", openai.InternalServerError, anthropic.InternalServerError),
        ("401", openai.AuthenticationError, anthropic.AuthenticationError),
        ("400", openai.BadRequestError, anthropic.BadRequestError),
    ],
)
async def test_status_faults_raise_the_sdks_own_errors(
    oai: openai.AsyncOpenAI,
    claude: anthropic.AsyncAnthropic,
    fault: str,
    openai_error: type,
    anthropic_error: type,
) -> None:
    with pytest.raises(openai_error):
        await oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-sim-fault": fault},
        )
    with pytest.raises(anthropic_error):
        await claude.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": f"[sim:fault={fault}]"}]
        )


async def test_the_sdks_own_retries_recover_from_a_counted_fault(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url=sim.openai_base_url, max_retries=2)
    completion = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "[sim:fault=429x2]"}]
    )
    assert completion.choices[0].message.content
    assert [r["outcome"] for r in sim.requests[-3:]] == ["error:429", "error:429", "completed"]
    await client.close()


async def test_disconnect_after_k_tokens_cuts_the_connection(
    oai: openai.AsyncOpenAI, sim: RunningSimulator
) -> None:
    stream = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "a b c d e"}],
        stream=True,
        extra_headers={"x-sim-fault": "disconnect-after:2"},
    )
    received = []
    with pytest.raises((openai.APIError, Exception)):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 2
    assert sim.requests[-1]["outcome"] == "disconnected_by_fault"


async def test_hang_never_answers_until_the_client_gives_up(sim: RunningSimulator) -> None:
    client = openai.AsyncOpenAI(
        api_key="k", base_url=sim.openai_base_url, max_retries=0, timeout=0.3
    )
    started = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[sim:fault=hang]"}]
        )
    assert time.perf_counter() - started >= 0.3
    await sim.wait_for_outcome("client_disconnected")
    await client.close()


async def test_a_client_that_leaves_is_recorded(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient() as http:
        body = {
            "model": "m",
            "stream": True,
            "messages": [{"role": "user", "content": "[sim:tokens=200] [sim:gap-ms=10]"}],
        }
        async with http.stream(
            "POST",
            f"{sim.openai_base_url}/chat/completions",
            json=body,
            headers={"authorization": "Bearer k"},
        ) as response:
            async for _ in response.aiter_lines():
                break
    record = await sim.wait_for_outcome("client_disconnected")
    assert record["tokens_sent"] < 200


async def test_timing_follows_ttft_and_gap(oai: openai.AsyncOpenAI) -> None:
    started = time.perf_counter()
    stream = await oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        extra_headers={"x-sim-ttft-ms": "150", "x-sim-gap-ms": "20", "x-sim-tokens": "5"},
    )
    times = [
        time.perf_counter() - started
        async for chunk in stream
        if chunk.choices and chunk.choices[0].delta.content
    ]
    # 4 gaps of 20 ms; the client may read the first token late, so allow one gap of slack.
    assert times[0] >= 0.145 and times[-1] - times[0] >= 0.06


async def test_requests_are_recorded_and_faults_can_be_queued(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient() as http:
        queued = await http.post(f"{sim.url}/_sim/faults", json={"fault": "503", "times": 1})
        assert queued.json() == {"queued": ["503"]}
        assert (
            await http.post(f"{sim.url}/_sim/faults", json={"fault": "nope"})
        ).status_code == 400
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": "Bearer k"}
        first = await http.post(
            f"{sim.openai_base_url}/chat/completions", json=body, headers=headers
        )
        second = await http.post(
            f"{sim.openai_base_url}/chat/completions", json=body, headers=headers
        )
        assert (first.status_code, second.status_code) == (503, 200)
        recorded = (await http.get(f"{sim.url}/_sim/requests")).json()["items"]
        assert recorded[-1]["body"] == body and recorded[-1]["outcome"] == "completed"
        assert (await http.delete(f"{sim.url}/_sim/requests")).status_code == 204
        assert (await http.get(f"{sim.url}/_sim/requests")).json()["items"] == []


async def test_bad_requests_are_refused_like_the_real_apis(sim: RunningSimulator) -> None:
    async with httpx.AsyncClient() as http:
        no_key = await http.post(
            f"{sim.openai_base_url}/chat/completions", json={"model": "m", "messages": []}
        )
        assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
        no_model = await http.post(
            f"{sim.openai_base_url}/chat/completions",
            json={"messages": []},
            headers={"authorization": "Bearer k"},
        )
        assert no_model.status_code == 400
        no_max = await http.post(
            f"{sim.url}/v1/messages",
            json={"model": "m", "messages": []},
            headers={"x-api-key": "k"},
        )
        assert no_max.status_code == 400 and no_max.json()["type"] == "error"


@pytest.mark.slow
async def test_the_command_line_serves_the_simulator() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz.cli",
            "simulate-llm",
            "--port",
            str(port),
            "--ttft-ms",
            "1",
            "--tokens",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = openai.AsyncOpenAI(
            api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        )
        for _ in range(100):
            try:
                completion = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x"}]
                )
                break
            except openai.APIConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("simulator did not start")
        assert completion.usage is not None and completion.usage.completion_tokens == 3
        await client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_openai_embeddings_come_back_through_the_sdk_as_unit_vectors(
    oai: openai.AsyncOpenAI,
) -> None:
    answer = await oai.embeddings.create(
        model="text-embedding-3-small", input=["red apples", "apples, red", "tax forms"]
    )
    vectors = [item.embedding for item in answer.data]
    assert [item.index for item in answer.data] == [0, 1, 2]
    assert all(len(vector) == 64 for vector in vectors)
    assert all(abs(sum(v * v for v in vector) - 1.0) < 1e-5 for vector in vectors)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > 0.99 > cosine(vectors[0], vectors[2])
    floats = await oai.embeddings.create(model="m", input="red apples", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    with pytest.raises(openai.BadRequestError):
        await oai.embeddings.create(model="m", input=[])


ASK = {
    "name": "ask_x",
    "description": "Ask X.",
    "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
}


async def test_openai_streamed_tool_call_is_assembled_by_the_sdks_own_helper(
    oai: openai.AsyncOpenAI,
) -> None:
    async with oai.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": 'go [sim:tool=ask_x;args={"task": "sum it up"}]'}],
        tools=[{"type": "function", "function": ASK}],  # type: ignore[list-item]
    ) as stream:
        completion = await stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "ask_x"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"task": "sum it up"}  # type: ignore[union-attr]


async def test_anthropic_streamed_tool_use_is_assembled_by_the_sdks_own_helper(
    claude: anthropic.AsyncAnthropic,
) -> None:
    async with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": 'go [sim:tool=ask_x;args={"task": "sum it up"}]'}],
        tools=[{"name": "ask_x", "description": "Ask X.", "input_schema": ASK["parameters"]}],  # type: ignore[list-item]
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "ask_x"
    assert block.input == {"task": "sum it up"}


async def test_a_tool_call_header_scripts_the_call_and_results_are_quoted_back(
    oai: openai.AsyncOpenAI,
) -> None:
    completion = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "no marker here"}],
        tools=[{"type": "function", "function": ASK}],  # type: ignore[list-item]
        extra_headers={"x-sim-tool-call": 'ask_x;args={"task":"t"}'},
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"task": "t"}  # type: ignore[union-attr]
    # Once the conversation ends with the tool's result the model answers, quoting it.
    answer = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "no marker here"},
            completion.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "forty-two"},
        ],
        tools=[{"type": "function", "function": ASK}],  # type: ignore[list-item]
        extra_headers={"x-sim-tool-call": 'ask_x;args={"task":"t"}'},
    )
    assert answer.choices[0].finish_reason == "stop"
    assert f"[{call.id}] forty-two" in (answer.choices[0].message.content or "")


async def test_tool_scripts_the_request_cannot_honour_are_refused(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError, match="not among the request's tools"):
        await oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "[sim:tool=ask_y]"}],
            tools=[{"type": "function", "function": ASK}],  # type: ignore[list-item]
        )
    with pytest.raises(openai.BadRequestError, match="not among the request's tools"):
        await oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[sim:tool=ask_x]"}]
        )
    with pytest.raises(anthropic.BadRequestError, match="JSON object"):
        await claude.messages.create(
            model="m",
            max_tokens=10,
            messages=[{"role": "user", "content": "[sim:tool=ask_x;args={nope}]"}],
            tools=[{"name": "ask_x", "input_schema": {"type": "object"}}],
        )
