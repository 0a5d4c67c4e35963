"""Retries before the first token only; after it an upstream failure ends with `error`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from kibitz.services.agents.providers.base import ProviderError, StreamEnd, StreamItem, TextDelta
from kibitz.services.agents.providers.resilience import RetryPolicy, stream_with_retries
from tests.services.agents.conftest import AgentsApi, assert_problem

FAST = RetryPolicy(max_attempts=3, base_seconds=0.001, max_seconds=0.01)


@pytest.mark.parametrize("provider", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])
@pytest.mark.parametrize("fault", ["429x2", "500x2", "disconnect-after:0x1"])
async def test_failures_before_the_first_token_are_retried(
    agents_sqlite: AgentsApi, provider: tuple[str, str], fault: str
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider=provider[0], model=provider[1])
    content = f"retry me {fault} [sim:fault={fault}] [sim:tokens=5]"
    before = len(sim.requests)
    status, events = await api.stream(account, agent["id"], content=content)
    assert status == 200, events
    assert [name for name, _ in events] == ["delta"] * 5 + ["done"]
    attempts = int(fault.rsplit("x", 1)[1]) + 1
    assert len(sim.requests) - before == attempts


async def test_retries_give_up_after_the_configured_attempts(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    before = len(sim.requests)
    response = await api.respond(
        account, agent["id"], content="always busy [sim:fault=429]", stream=True
    )
    assert_problem(response, 503)
    assert len(sim.requests) - before == 3


async def test_client_errors_are_not_retried(agents_sqlite: AgentsApi) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    before = len(sim.requests)
    assert_problem(await api.respond(account, agent["id"], content="[sim:fault=401]"), 502)
    assert len(sim.requests) - before == 1


@pytest.mark.parametrize("provider", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])
async def test_a_failure_after_the_first_token_ends_the_stream_with_an_error_event(
    agents_sqlite: AgentsApi, provider: tuple[str, str]
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider=provider[0], model=provider[1])
    before = len(sim.requests)
    status, events = await api.stream(
        account, agent["id"], content="a b c d e f g [sim:fault=disconnect-after:3]"
    )
    assert status == 200
    assert [name for name, _ in events] == ["delta", "delta", "delta", "error"]
    problem = events[-1][1]
    assert problem["status"] == 502 and problem["type"].endswith("llm-unavailable")
    assert len(sim.requests) - before == 1  # not replayed


async def test_a_failure_after_the_first_token_without_streaming_is_a_502(
    agents_sqlite: AgentsApi,
) -> None:
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="anthropic", model="claude-haiku-4-5")
    # Not streamed upstream either: the cut answer is simply lost and may be retried.
    response = await api.respond(
        account, agent["id"], content="a b c [sim:fault=disconnect-after:2]"
    )
    assert_problem(response, 502)


async def _items(*items: StreamItem | ProviderError) -> AsyncIterator[StreamItem]:
    for item in items:
        if isinstance(item, ProviderError):
            raise item
        yield item


async def test_stream_with_retries_marks_errors_after_the_first_item() -> None:
    attempts: list[int] = []

    def open_stream() -> AsyncIterator[StreamItem]:
        attempts.append(1)
        return _items(TextDelta("hi"), ProviderError("unavailable", "cut"))

    received = []
    with pytest.raises(ProviderError) as caught:
        async for item in stream_with_retries(open_stream, FAST):
            received.append(item)
    assert received == [TextDelta("hi")] and caught.value.after_first_token and len(attempts) == 1


async def test_stream_with_retries_retries_only_retryable_errors() -> None:
    failures = [
        ProviderError("rate_limited", "busy", 429, retry_after=0.001),
        ProviderError("timeout", "slow"),
    ]
    retried: list[ProviderError] = []

    def open_stream() -> AsyncIterator[StreamItem]:
        if failures:
            return _items(failures.pop(0))
        return _items(TextDelta("ok"), StreamEnd(1, 1, "stop", "m"))

    items = [item async for item in stream_with_retries(open_stream, FAST, on_retry=retried.append)]
    assert items[0] == TextDelta("ok") and len(retried) == 2
    with pytest.raises(ProviderError):
        async for _ in stream_with_retries(
            lambda: _items(ProviderError("rejected", "no", 400)), FAST
        ):
            pass


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=0.1, max_seconds=0.3)
    assert 0.05 <= policy.delay(1, None) <= 0.1
    assert 0.15 <= policy.delay(4, None) <= 0.3
    assert policy.delay(1, 0.2) == 0.2 and policy.delay(1, 60) == 0.3


@pytest.mark.parametrize("provider", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])
async def test_the_stream_opens_when_the_provider_accepts_before_the_first_token(
    agents_sqlite: AgentsApi, provider: tuple[str, str]
) -> None:
    """The head goes out while the model thinks: a relay is ready when the first token comes."""
    api = agents_sqlite
    account = await api.user()
    agent = await api.create_ok(account, llm_provider=provider[0], model=provider[1])
    body = {
        "agent_id": agent["id"],
        "stream": True,
        "messages": [{"role": "user", "content": "slow [sim:ttft-ms=600] [sim:tokens=2]"}],
    }
    started = time.perf_counter()
    async with api.http.stream(
        "POST", f"{api.url}/agents/respond", json=body, headers=account.headers
    ) as response:
        head_after = time.perf_counter() - started
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == "event: delta":
                break
        first_token_after = time.perf_counter() - started
    assert head_after < 0.4 < 0.6 <= first_token_after


async def test_a_provider_that_accepts_then_keeps_failing_ends_the_open_stream_with_an_error(
    agents_sqlite: AgentsApi,
) -> None:
    api, sim = agents_sqlite, agents_sqlite.sim
    account = await api.user()
    agent = await api.create_ok(account, llm_provider="openai", model="gpt-4o-mini")
    before = len(sim.requests)
    status, events = await api.stream(
        account, agent["id"], content="cut [sim:fault=disconnect-after:0]"
    )
    assert status == 200
    assert [name for name, _ in events] == ["error"]
    assert events[0][1]["status"] == 502
    assert len(sim.requests) - before == 3  # each attempt was retried before any token
