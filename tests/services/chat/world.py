"""A world for chat tests: a real stack (auth, tenants, agents, chat, maybe the gateway), the LLM
simulator behind the agents' OpenAI provider, users with agents, and an SSE reader."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.fixtures.simulator import RunningSimulator, start_simulator
from tests.fixtures.stack import Account, Stack, start_stack

SERVICE_MODULES = ["auth", "tenants", "agents", "chat"]


@dataclass
class SseEvent:
    """One server-sent event, with when it arrived (monotonic seconds)."""

    event: str
    id: str | None
    data: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


async def read_sse(
    response: httpx.Response,
    *,
    until: Any = None,
    limit: int = 10_000,
) -> list[SseEvent]:
    """Read events until `until(event)` is true (or the body ends, or `limit` events)."""
    events: list[SseEvent] = []
    name: str = "message"
    event_id: str | None = None
    data: list[str] = []
    # One line iterator per response, so a stream can be read in several goes.
    lines = getattr(response, "_chat_test_lines", None)
    if lines is None:
        lines = response.aiter_lines()
        response._chat_test_lines = lines  # type: ignore[attr-defined]
    async for line in lines:
        if line == "":
            if data:
                event = SseEvent(name, event_id, json.loads("\n".join(data)))
                events.append(event)
                if (until is not None and until(event)) or len(events) >= limit:
                    return events
            name, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "id":
            event_id = value
        elif key == "data":
            data.append(value)
    return events


def reply_finished(message_id: str) -> Any:
    """An `until` for read_sse: the reply's completed/failed event."""

    def check(event: SseEvent) -> bool:
        return event.event in ("message.completed", "message.failed") and (
            event.data.get("id") == message_id
        )

    return check


def streamed_text(events: list[SseEvent], message_id: str) -> str:
    """The concatenated deltas of one message."""
    return "".join(
        e.data["content"]
        for e in events
        if e.event == "message.delta" and e.data["message_id"] == message_id
    )


@dataclass
class Member:
    """A registered user with one agent."""

    account: Account
    agent_id: str

    @property
    def headers(self) -> dict[str, str]:
        return self.account.headers


@dataclass
class World:
    """The stack, the simulator and helpers; `base` is where chat requests go."""

    stack: Stack
    simulator: RunningSimulator
    base: str
    through_gateway: bool = False

    @property
    def http(self) -> httpx.AsyncClient:
        return self.stack.http

    def url(self, path: str) -> str:
        """Where a request for `path` goes: the gateway, or straight to the owning service."""
        if self.through_gateway:
            return self.stack.url("gateway") + path
        return self.stack.url(path.strip("/").split("/", 1)[0]) + path

    async def member(self, **register: Any) -> Member:
        """A new user (a new tenant unless an invite is given) with one simulator-backed agent."""
        account = await self.stack.register(
            base_url=self.url("/auth").removesuffix("/auth"), **register
        )
        response = await self.http.post(
            self.url("/agents/create"),
            headers=account.headers,
            json={
                "name": "Sim",
                "llm_provider": "openai",
                "model": "gpt-4o-mini",
                "instructions": "Be brief.",
            },
        )
        assert response.status_code == 201, response.text
        return Member(account=account, agent_id=response.json()["id"])

    async def add_agent(self, member: Member, name: str) -> str:
        """Another simulator-backed agent of the member's, named `name`."""
        response = await self.http.post(
            self.url("/agents/create"),
            headers=member.headers,
            json={
                "name": name,
                "llm_provider": "openai",
                "model": "gpt-4o-mini",
                "instructions": f"You are {name}.",
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def subscribe(self, member: Member, plan: str) -> None:
        """Move the member's tenant to `plan` (they are its owner)."""
        response = await self.http.post(
            self.url("/tenants/subscribe"), headers=member.headers, json={"plan": plan}
        )
        assert response.status_code == 200, response.text

    async def send(
        self,
        member: Member,
        content: str,
        *,
        chat_id: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """POST /chat/send (to a new chat with the member's agent unless chat_id is given)."""
        body: dict[str, Any] = {"content": content, **extra}
        if chat_id is None:
            body.setdefault("agent_id", member.agent_id)
        else:
            body["chat_id"] = chat_id
        return await self.http.post(
            f"{self.base}/chat/send", json=body, headers={**member.headers, **(headers or {})}
        )

    async def wait_finished(
        self, member: Member, chat_id: str, message_id: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Poll the history until the message is no longer pending/streaming."""
        deadline = time.monotonic() + timeout
        while True:
            # Straight to chat, so polling does not spend the gateway's rate limit.
            response = await self.http.get(
                f"{self.stack.url('chat')}/chat/history/{chat_id}", headers=member.headers
            )
            assert response.status_code == 200, response.text
            for message in response.json()["messages"]:
                if message["id"] == message_id and message["status"] not in (
                    "pending",
                    "streaming",
                ):
                    return dict(message)
            assert time.monotonic() < deadline, f"message {message_id} did not finish"
            await asyncio.sleep(0.05)

    async def new_chat(self, member: Member) -> str:
        """A chat with one finished exchange in it."""
        body = (await self.send(member, "hi [sim:tokens=2]")).json()
        await self.wait_finished(member, body["chat_id"], body["agent_message"]["id"])
        return str(body["chat_id"])

    @asynccontextmanager
    async def stream(
        self, member: Member, chat_id: str, *, last_event_id: str | None = None
    ) -> AsyncIterator[httpx.Response]:
        """GET /chat/stream/{chat_id}, open."""
        headers = {**member.headers, "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        async with self.http.stream(
            "GET", f"{self.base}/chat/stream/{chat_id}", headers=headers
        ) as response:
            yield response


@asynccontextmanager
async def chat_world(
    data_dir: Path,
    *,
    database: str = "sqlite",
    gateway: bool = False,
    modules: list[str] | None = None,
    env: dict[str, str] | None = None,
    simulator: dict[str, Any] | None = None,
    own_processes: list[str] | None = None,
) -> AsyncIterator[World]:
    """Start the simulator and a stack wired to it (`own_processes` run apart, as `kibitz up`
    runs agents and knowledge)."""
    async with start_simulator(**(simulator or {"ttft_ms": 5, "gap_ms": 2})) as sim:
        names = list(modules or SERVICE_MODULES) + (["gateway"] if gateway else [])
        values = {
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-simulated",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": sim.openai_base_url,
            # The simulator speaks Anthropic's wire format at its root.
            "KIBITZ_AGENTS_ANTHROPIC_API_KEY": "sk-ant-simulated",
            "KIBITZ_AGENTS_ANTHROPIC_BASE_URL": sim.url,
            "KIBITZ_AGENTS_PLAN_CACHE_SECONDS": "0",
            **(env or {}),
        }
        async with start_stack(
            names, data_dir=data_dir, database=database, env=values, own_processes=own_processes
        ) as stack:
            base = stack.url("gateway") if gateway else stack.url("chat")
            yield World(stack=stack, simulator=sim, base=base, through_gateway=gateway)


def new_key() -> str:
    """A fresh Idempotency-Key."""
    return uuid.uuid4().hex
