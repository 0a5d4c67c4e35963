"""Reply rules that span the service: client disconnects cancel upstream, timeouts, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.simulator import RunningSimulator
from tests.fixtures.stack import start_stack
from tests.services.agents.conftest import AgentsApi, agents_env, assert_problem


@pytest.fixture(scope="module")
async def impatient(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Agents with short timeouts and two attempts."""
    env = agents_env(
        sim,
        KIBITZ_AGENTS_READ_TIMEOUT_SECONDS="0.3",
        KIBITZ_AGENTS_TOTAL_TIMEOUT_SECONDS="1.5",
        KIBITZ_AGENTS_MAX_ATTEMPTS="2",
    )
    async with start_stack(
        ["auth", "agents"], data_dir=tmp_path_factory.mktemp("agents"), env=env
    ) as stack:
        yield AgentsApi(stack=stack, sim=sim)


@pytest.mark.parametrize(
    "provider", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("custom", "llama3")]
)
async def test_a_client_that_goes_away_mid_stream_cancels_the_upstream_call(
    agents_sqlite: AgentsApi, provider: tuple[str, str]
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    extra = {"base_url": sim.openai_base_url} if provider[0] == "custom" else {}
    agent = await api.create_ok(account, llm_provider=provider[0], model=provider[1], **extra)
    body = {
        "agent_id": agent["id"],
        "stream": True,
        "messages": [{"role": "user", "content": "long story [sim:tokens=500] [sim:gap-ms=20]"}],
    }
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST", f"{api.url}/agents/respond", json=body, headers=account.headers
        ) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: delta"):
                break
    record = await sim.wait_for_outcome("client_disconnected")
    assert 1 <= record["tokens_sent"] < 100


async def test_a_client_that_goes_away_before_the_first_token_cancels_the_upstream_call(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    body = {
        "agent_id": agent["id"],
        "stream": True,
        "messages": [{"role": "user", "content": "slow [sim:ttft-ms=3000]"}],
    }
    async with httpx.AsyncClient(timeout=10) as client:
        request = asyncio.create_task(
            client.post(f"{api.url}/agents/respond", json=body, headers=account.headers)
        )
        while (
            not sim.requests
            or sim.requests[-1]["body"]["messages"][-1]["content"] != "slow [sim:ttft-ms=3000]"
        ):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
    record = await sim.wait_for_outcome("client_disconnected", timeout=2.5)
    assert record["tokens_sent"] == 0


async def test_a_client_that_goes_away_from_a_json_reply_cancels_the_upstream_call(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="anthropic", model="claude-haiku-4-5")
    content = "whole [sim:ttft-ms=3000]"
    body = {"agent_id": agent["id"], "messages": [{"role": "user", "content": content}]}
    async with httpx.AsyncClient(timeout=10) as client:
        request = asyncio.create_task(
            client.post(f"{api.url}/agents/respond", json=body, headers=account.headers)
        )
        while not sim.requests or sim.requests[-1]["body"]["messages"][-1]["content"] != content:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
    record = await sim.wait_for_outcome("client_disconnected", timeout=2.5)
    assert record["body"].get("stream") is not True


async def test_an_upstream_that_hangs_times_out_with_a_504(impatient: AgentsApi) -> None:
    account = await impatient.user()
    agent = await impatient.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    before = len(impatient.sim.requests)
    problem = assert_problem(
        await impatient.respond(account, agent["id"], content="[sim:fault=hang]"), 504
    )
    assert problem["type"].endswith("llm-timeout")
    assert len(impatient.sim.requests) - before == 2  # timeouts are retried before the first token


async def test_a_stream_that_stalls_after_the_first_token_ends_with_an_error(
    impatient: AgentsApi,
) -> None:
    account = await impatient.user()
    agent = await impatient.create_ok(account, llm_provider="anthropic", model="claude-haiku-4-5")
    status, events = await impatient.stream(
        account, agent["id"], content="a b c d [sim:fault=stall-after:2]"
    )
    assert status == 200
    assert [name for name, _ in events] == ["delta", "delta", "error"]
    assert events[-1][1]["status"] == 504


async def test_a_reply_longer_than_the_total_timeout_is_cut(impatient: AgentsApi) -> None:
    account = await impatient.user()
    agent = await impatient.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    status, events = await impatient.stream(
        account, agent["id"], content="x [sim:tokens=100] [sim:gap-ms=100]"
    )
    assert status == 200 and events[-1][0] == "error" and events[-1][1]["status"] == 504
    assert 5 <= len(events) - 1 <= 20


async def test_llm_metrics_are_exported_by_provider_and_plan(agents_sqlite: AgentsApi) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    await api.stream(account, agent["id"])
    await api.respond(account, agent["id"], content="[sim:fault=401]")
    text = (await api.http.get(f"{api.url}/metrics")).text
    # The tenant's plan, never its id (a new tenant is on the default plan, basic).
    assert 'kibitz_llm_time_to_first_token_seconds_count{plan="basic",provider="openai"}' in text
    assert 'kibitz_llm_tokens_total{direction="out",plan="basic",provider="openai"}' in text
    assert account.tenant_id not in text
    assert 'kibitz_llm_errors_total{kind="credentials",provider="openai"}' in text
    assert (
        'kibitz_llm_request_duration_seconds_count{outcome="completed",provider="openai"}' in text
    )


async def test_sse_frames_are_valid_json_lines(agents_sqlite: AgentsApi) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account)
    body = {
        "agent_id": agent["id"],
        "stream": True,
        "messages": [{"role": "user", "content": 'quote " and \n newline'}],
    }
    async with api.http.stream(
        "POST", f"{api.url}/agents/respond", json=body, headers=account.headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        raw = (await response.aread()).decode()
    frames = [frame for frame in raw.split("\n\n") if frame]
    for frame in frames:
        event, data = frame.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        json.loads(data[len("data: ") :])


async def test_deltas_that_arrive_together_keep_one_event_each(agents_sqlite: AgentsApi) -> None:
    api = agents_sqlite
    account = await api.user()
    for provider, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")):
        agent = await api.create_ok(account, name=provider, llm_provider=provider, model=model)
        status, events = await api.stream(
            account, agent["id"], content="x [sim:tokens=300] [sim:gap-ms=0]"
        )
        assert status == 200
        assert sum(1 for name, _ in events if name == "delta") == 300
        assert events[-1][1]["usage"]["output_tokens"] == 300
