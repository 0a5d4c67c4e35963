"""Two chat processes sharing Redis: a client of one sees, resumes and stops the other's replies."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.services.chat.world import (
    Member,
    SseEvent,
    World,
    chat_world,
    read_sse,
    reply_finished,
    streamed_text,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]
REDIS_URL = "redis://127.0.0.1:6379/0"
SLOW = "[sim:tokens=40] [sim:gap-ms=25]"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def chat_process(world: World, data_dir: Path) -> AsyncIterator[str]:
    """`kibitz serve chat` in a process of its own, on the stack's database and Redis."""
    port = free_port()
    platform = world.stack.running.platform
    env = {
        **os.environ,
        "KIBITZ_DATA_DIR": str(data_dir),
        "KIBITZ_REDIS_URL": REDIS_URL,
        "KIBITZ_INTERNAL_TOKEN": platform.internal_token,
        "KIBITZ_LOG_LEVEL": "WARNING",
        **{f"KIBITZ_{name.upper()}_URL": urls[0] for name, urls in platform.service_urls.items()},
    }
    env.pop("KIBITZ_CHAT_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz",
            "serve",
            "chat",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if (await world.http.get(f"{url}/readyz", timeout=1)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the second chat process did not start"
            await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Replicas:
    world: World
    a: str
    b: str

    async def send_on_b(self, member: Member, content: str, chat_id: str) -> dict[str, object]:
        response = await self.world.http.post(
            f"{self.b}/chat/send",
            json={"content": content, "chat_id": chat_id},
            headers=member.headers,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[Replicas]:
    async with (
        chat_world(tmp_path, env={"KIBITZ_REDIS_URL": REDIS_URL}) as world,
        chat_process(world, tmp_path) as second,
    ):
        yield Replicas(world=world, a=world.stack.url("chat"), b=second)


async def test_a_client_on_one_replica_sees_a_reply_generated_on_the_other(
    replicas: Replicas,
) -> None:
    world = replicas.world
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    async with world.stream(alice, chat_id) as stream:  # replica A
        body = await replicas.send_on_b(alice, f"go {SLOW}", chat_id)
        reply_id = str(body["agent_message"]["id"])  # type: ignore[index]
        events = await read_sse(stream, until=reply_finished(reply_id))
    assert [e.event for e in events[:2]] == ["message.created", "message.created"]
    assert events[-1].event == "message.completed"
    # Streamed live, piece by piece: 40 tokens 25 ms apart are 40 deltas, fewer when a busy
    # replica joins those that came within its linger (KIBITZ_CHAT_DELTA_LINGER_SECONDS).
    assert 1 < len([e for e in events if e.event == "message.delta"]) <= 40
    assert streamed_text(events, reply_id) == events[-1].data["content"]


async def test_resuming_on_one_replica_mid_reply_from_the_other_is_exact(
    replicas: Replicas,
) -> None:
    world = replicas.world
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    body = await replicas.send_on_b(alice, f"go {SLOW}", chat_id)
    reply_id = str(body["agent_message"]["id"])  # type: ignore[index]
    headers = {**alice.headers, "Accept": "text/event-stream"}
    async with world.http.stream(
        "GET", f"{replicas.b}/chat/stream/{chat_id}", headers=headers
    ) as b:
        seen = 0

        def five_deltas(event: SseEvent) -> bool:
            nonlocal seen
            seen += event.event == "message.delta"
            return seen >= 5

        before = await read_sse(b, until=five_deltas)
    await asyncio.sleep(0.2)
    async with world.stream(alice, chat_id, last_event_id=before[-1].id) as a:
        after = await read_sse(a, until=reply_finished(reply_id))
    assert (
        streamed_text(before, reply_id) + streamed_text(after, reply_id)
        == after[-1].data["content"]
    )


async def test_stop_on_one_replica_stops_a_reply_generated_on_the_other(replicas: Replicas) -> None:
    world = replicas.world
    alice = await world.member()
    chat_id = await world.new_chat(alice)
    body = await replicas.send_on_b(alice, "go [sim:tokens=300] [sim:gap-ms=20]", chat_id)
    reply_id = str(body["agent_message"]["id"])  # type: ignore[index]
    await asyncio.sleep(0.4)
    stopped = await world.http.post(
        f"{replicas.a}/chat/messages/{reply_id}/stop", headers=alice.headers
    )
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert 0 < len(stopped.json()["content"].split()) < 300
    await asyncio.sleep(0.3)
    stored = await world.wait_finished(alice, chat_id, reply_id)
    assert stored["content"] == stopped.json()["content"]
