"""The OpenAI-compatible API through the gateway, with the official `openai` SDK as the client
and a kibitz API key as its key; the LLM simulator plays OpenAI behind the agents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from kibitz.gateway.module import create_app as create_gateway
from tests.conftest import DATABASES
from tests.fixtures.serving import serving
from tests.fixtures.simulator import RunningSimulator, start_simulator
from tests.fixtures.stack import Account, Stack, start_stack
from tests.services.agents.conftest import agents_env

MODULES = ["auth", "tenants", "agents", "gateway"]


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[RunningSimulator]:
    """The LLM simulator, shared by the module's tests."""
    async with start_simulator() as running:
        yield running


@pytest.fixture(scope="module", params=DATABASES)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[Stack]:
    """Auth, tenants, agents and the gateway, shared by the module's tests, on SQLite and on
    PostgreSQL."""
    data_dir = tmp_path_factory.mktemp("openai")
    async with start_stack(
        MODULES, data_dir=data_dir, database=str(request.param), env=agents_env(sim)
    ) as running:
        yield running


async def new_key(stack: Stack, account: Account) -> dict[str, Any]:
    response = await stack.http.post(
        f"{stack.entry}/auth/api-keys", json={"name": "sdk"}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_agent(stack: Stack, account: Account, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Tutor",
        "llm_provider": "openai",
        "model": "gpt-4o-mini",
        "instructions": "Answer like a tutor.",
        "temperature": 0.3,
        **fields,
    }
    response = await stack.http.post(
        f"{stack.entry}/agents/create", json=body, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@asynccontextmanager
async def sdk(stack: Stack, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK pointed at the gateway, with a kibitz key; no retries (they would hide
    the first answer)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield openai.AsyncOpenAI(
            base_url=f"{stack.entry}/v1", api_key=key, http_client=http, max_retries=0
        )


async def tokens_used(stack: Stack, account: Account) -> int:
    usage = await stack.http.get(f"{stack.entry}/tenants/usage", headers=account.headers)
    assert usage.status_code == 200, usage.text
    return int(usage.json()["tokens"]["used"])


async def test_models_are_the_callers_agents(stack: Stack) -> None:
    alice, bob = await stack.register(), await stack.register()
    tutor = await new_agent(stack, alice, name="Tutor")
    echo = await new_agent(stack, alice, name="Parrot", llm_provider="echo", model="echo")
    await new_agent(stack, bob, name="Bob's")
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        models = await client.models.list()
    listed = {model.id: model for model in models.data}
    assert set(listed) == {tutor["id"], echo["id"]}
    assert listed[tutor["id"]].object == "model"
    assert (listed[tutor["id"]].model_extra or {})["name"] == "Tutor"
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        for model in (tutor["id"], "Parrot"):
            found = await client.models.retrieve(model)
            assert found.id in (tutor["id"], echo["id"])
        with pytest.raises(openai.NotFoundError) as raised:
            await client.models.retrieve("Bob's")
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["code"] == "model_not_found"
        with pytest.raises(openai.NotFoundError) as raised:
            await client.embeddings.create(model=tutor["id"], input="not served")
        assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "not_found"


async def test_a_completion_applies_the_agent_and_the_clients_bounds(
    stack: Stack, sim: RunningSimulator
) -> None:
    alice = await stack.register()
    tutor = await new_agent(stack, alice)
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        completion = await client.chat.completions.create(
            model=tutor["id"],
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is a monad?"},
                {"role": "assistant", "content": "A burrito."},
                {"role": "user", "content": "Really?"},
            ],
        )
        request = sim.requests[-1]["body"]
        assert request["model"] == "gpt-4o-mini" and request["temperature"] == 0.3
        assert request["messages"][0] == {"role": "system", "content": "Answer like a tutor."}
        assert [m["content"] for m in request["messages"][1:]] == [
            "Be brief.",
            "What is a monad?",
            "A burrito.",
            "Really?",
        ]
        assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
        assert completion.model == tutor["id"]
        choice = completion.choices[0]
        assert choice.finish_reason == "stop" and choice.message.role == "assistant"
        assert "Simulated reply from gpt-4o-mini" in (choice.message.content or "")
        assert "You said: Really?" in (choice.message.content or "")
        assert completion.usage is not None and completion.usage.completion_tokens > 0
        assert completion.usage.total_tokens == (
            completion.usage.prompt_tokens + completion.usage.completion_tokens
        )

        # By its unique name, with the client's temperature and a lower token cap.
        await client.chat.completions.create(
            model="Tutor",
            messages=[{"role": "user", "content": "Again"}],
            temperature=1.5,
            max_tokens=7,
        )
        request = sim.requests[-1]["body"]
        assert request["temperature"] == 1.5 and request["max_completion_tokens"] == 7


async def test_a_streamed_completion_ends_with_its_usage(stack: Stack) -> None:
    alice = await stack.register()
    tutor = await new_agent(stack, alice)
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        stream = await client.chat.completions.create(
            model=tutor["id"],
            messages=[{"role": "user", "content": "Stream this please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "You said: Stream this please" in text
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finishing] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def assert_completions_are_metered(stack: Stack) -> None:
    alice = await stack.register()
    tutor = await new_agent(stack, alice)
    before = await tokens_used(stack, alice)
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        completion = await client.chat.completions.create(
            model=tutor["id"], messages=[{"role": "user", "content": "count me"}]
        )
        assert completion.usage is not None
        stream = await client.chat.completions.create(
            model=tutor["id"], messages=[{"role": "user", "content": "and me"}], stream=True
        )
        streamed = [chunk async for chunk in stream]
    assert streamed
    expected = before + completion.usage.total_tokens
    used = before
    for _ in range(100):
        used = await tokens_used(stack, alice)
        if used > expected:
            break
        await asyncio.sleep(0.02)
    # Both completions counted: the first exactly, the second with whatever it used.
    assert used > expected
    usage = await stack.http.get(f"{stack.entry}/tenants/usage", headers=alice.headers)
    assert usage.json()["messages"]["used"] == 2


async def test_completions_are_metered_to_the_tenant(stack: Stack) -> None:
    await assert_completions_are_metered(stack)


async def test_completions_are_metered_when_agents_runs_in_a_process_of_its_own(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    # As `kibitz up` runs it: a child process without the event bus.
    async with start_stack(
        MODULES, data_dir=tmp_path, env=agents_env(sim), own_processes=["agents"]
    ) as stack:
        await assert_completions_are_metered(stack)


async def test_an_unknown_model_or_another_tenants_agent_is_a_404_in_openai_shape(
    stack: Stack,
) -> None:
    alice, mallory = await stack.register(), await stack.register()
    alices_agent = await new_agent(stack, alice)
    await new_agent(stack, mallory, name="Twin")
    await new_agent(stack, mallory, name="Twin")
    async with sdk(stack, (await new_key(stack, mallory))["key"]) as client:
        for model in (alices_agent["id"], "no-such-agent", "Tutor", "Twin"):
            with pytest.raises(openai.NotFoundError) as raised:
                await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}]
                )
            error = raised.value.body
            assert isinstance(error, dict), error
            assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
            assert error["message"] and set(error) == {"message", "type", "param", "code"}


async def test_a_request_kibitz_cannot_honour_is_a_400_naming_the_field(stack: Stack) -> None:
    alice = await stack.register()
    tutor = await new_agent(stack, alice)
    async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(
                model=tutor["id"],
                messages=[{"role": "tool", "content": "42", "tool_call_id": "call_1"}],
            )
    error = raised.value.body
    assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    assert error["param"] and error["param"].startswith("messages")


async def test_no_key_or_a_revoked_key_is_a_401_in_openai_shape_on_every_replica(
    stack: Stack,
) -> None:
    alice = await stack.register()
    tutor = await new_agent(stack, alice)
    created = await new_key(stack, alice)
    # A second gateway replica on the same bus; both have the key in their cache.
    async with serving(create_gateway(stack.running.platform)) as second_url:
        second = Stack(running=stack.running, http=stack.http, data_dir=stack.data_dir)
        second.running = replace(stack.running, urls={**stack.running.urls, "gateway": second_url})
        async with sdk(stack, created["key"]) as client, sdk(second, created["key"]) as other:
            assert (await client.models.list()).data and (await other.models.list()).data
            revoked = await stack.http.delete(
                f"{stack.entry}/auth/api-keys/{created['id']}", headers=alice.headers
            )
            assert revoked.status_code == 204
            with pytest.raises(openai.AuthenticationError) as raised:
                await client.chat.completions.create(
                    model=tutor["id"], messages=[{"role": "user", "content": "hi"}]
                )
            error = raised.value.body
            assert isinstance(error, dict) and error["code"] == "invalid_api_key"
            # The other replica hears of it through the bus: within milliseconds (its cache
            # would otherwise trust the key for 30 s).
            with pytest.raises(openai.AuthenticationError):
                for _ in range(10):
                    await other.models.list()
                    await asyncio.sleep(0.02)
    bare = await stack.http.get(f"{stack.entry}/v1/models")
    assert bare.status_code == 401 and set(bare.json()) == {"error"}


def tiny_token_plans(tmp_path: Path) -> Path:
    shipped = Path(__file__).parents[4] / "src/kibitz/services/tenants/plans.json"
    catalogue = json.loads(shipped.read_text())
    for plan in catalogue["plans"]:
        if plan["id"] == "basic":
            plan["limits"]["tokens_per_month"] = 20
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(catalogue))
    return path


async def test_a_spent_token_quota_is_a_429_in_openai_shape(
    tmp_path: Path, sim: RunningSimulator
) -> None:
    env = {**agents_env(sim), "KIBITZ_TENANTS_PLANS_FILE": str(tiny_token_plans(tmp_path))}
    async with start_stack(MODULES, data_dir=tmp_path, env=env) as stack:
        alice = await stack.register()
        tutor = await new_agent(stack, alice)
        async with sdk(stack, (await new_key(stack, alice))["key"]) as client:
            await client.chat.completions.create(
                model=tutor["id"], messages=[{"role": "user", "content": "use up [sim:tokens=30]"}]
            )
            for _ in range(100):
                if await tokens_used(stack, alice) >= 20:
                    break
                await asyncio.sleep(0.02)
            calls_before = len(sim.requests)
            with pytest.raises(openai.RateLimitError) as raised:
                await client.chat.completions.create(
                    model=tutor["id"], messages=[{"role": "user", "content": "one more"}]
                )
    error = raised.value.body
    assert isinstance(error, dict) and error["type"] == "insufficient_quota"
    assert error["code"] == "insufficient_quota" and "tokens" in error["message"]
    assert raised.value.response.headers["retry-after"]
    # The model was asked while the quota was checked, and stopped once it was refused.
    assert len(sim.requests) <= calls_before + 1
