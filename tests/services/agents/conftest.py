"""Fixtures of the agents tests: auth + agents on loopback, the LLM simulator as the provider."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import DATABASES
from tests.fixtures.simulator import RunningSimulator, start_simulator
from tests.fixtures.stack import Account, Stack, start_stack

PROBLEM = "application/problem+json"
DEPLOYMENT_OPENAI_KEY = "sk-deployment-openai-0123456789"
DEPLOYMENT_ANTHROPIC_KEY = "sk-ant-deployment-0123456789"


def agents_env(sim: RunningSimulator, **extra: str) -> dict[str, str]:
    """Agents settings pointing both official APIs at the simulator."""
    return {
        "KIBITZ_AGENTS_OPENAI_API_KEY": DEPLOYMENT_OPENAI_KEY,
        "KIBITZ_AGENTS_OPENAI_BASE_URL": sim.openai_base_url,
        "KIBITZ_AGENTS_ANTHROPIC_API_KEY": DEPLOYMENT_ANTHROPIC_KEY,
        "KIBITZ_AGENTS_ANTHROPIC_BASE_URL": sim.url,
        "KIBITZ_AGENTS_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        "KIBITZ_AGENTS_ECHO_WORD_DELAY_MS": "0",
        "KIBITZ_AGENTS_RETRY_BASE_SECONDS": "0.01",
        "KIBITZ_AGENTS_RETRY_MAX_SECONDS": "0.05",
        "KIBITZ_AGENTS_READ_TIMEOUT_SECONDS": "2",
        **extra,
    }


@dataclass
class AgentsApi:
    """Calls to the agents service as one user or another."""

    stack: Stack
    sim: RunningSimulator

    @property
    def url(self) -> str:
        return self.stack.url("agents")

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    async def user(self) -> Account:
        """A new user in a new tenant."""
        return await self.stack.register()

    async def create(self, account: Account, **fields: Any) -> httpx.Response:
        body = {
            "name": "Helper",
            "llm_provider": "echo",
            "model": "echo",
            "instructions": "",
            **fields,
        }
        return await self.http.post(f"{self.url}/agents/create", json=body, headers=account.headers)

    async def create_ok(self, account: Account, **fields: Any) -> dict[str, Any]:
        response = await self.create(account, **fields)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def respond(
        self, account: Account, agent_id: str, content: str = "hello there", **extra: Any
    ) -> httpx.Response:
        body = {"agent_id": agent_id, "messages": [{"role": "user", "content": content}], **extra}
        return await self.http.post(
            f"{self.url}/agents/respond", json=body, headers=account.headers
        )

    async def stream(
        self, account: Account, agent_id: str, content: str = "hello there"
    ) -> tuple[int, list[tuple[str, Any]]]:
        """Status and parsed SSE events of a streamed reply."""
        body = {
            "agent_id": agent_id,
            "stream": True,
            "messages": [{"role": "user", "content": content}],
        }
        async with self.http.stream(
            "POST", f"{self.url}/agents/respond", json=body, headers=account.headers
        ) as response:
            raw = (await response.aread()).decode()
        if response.status_code != 200:
            return response.status_code, [("problem", json.loads(raw))]
        return response.status_code, parse_sse(raw)


def parse_sse(raw: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in raw.strip().split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data += line[len("data: ") :]
        if data:
            events.append((name, json.loads(data)))
    return events


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The answer is a problem+json document with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = dict(response.json())
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[RunningSimulator]:
    """The LLM simulator, shared by a module's tests."""
    async with start_simulator() as running:
        yield running


@pytest.fixture(scope="module", params=DATABASES)
async def agents(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Auth and agents, on SQLite and on PostgreSQL, with the simulator as OpenAI and Anthropic."""
    data_dir = tmp_path_factory.mktemp("agents")
    async with start_stack(
        ["auth", "agents"], data_dir=data_dir, database=str(request.param), env=agents_env(sim)
    ) as stack:
        yield AgentsApi(stack=stack, sim=sim)


@pytest.fixture(scope="module")
async def agents_sqlite(
    tmp_path_factory: pytest.TempPathFactory, sim: RunningSimulator
) -> AsyncIterator[AgentsApi]:
    """Auth and agents on SQLite only (provider behaviour does not depend on the database)."""
    data_dir = tmp_path_factory.mktemp("agents")
    async with start_stack(["auth", "agents"], data_dir=data_dir, env=agents_env(sim)) as stack:
        yield AgentsApi(stack=stack, sim=sim)
