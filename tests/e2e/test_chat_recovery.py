"""Replies survive their process (`kill -9` of `kibitz up` mid-reply, then a restart), and a
burst of sends never starts more replies than the per-user cap.

Real processes: the LLM simulator in this one, `kibitz up` in a process group of its own (killed
whole with SIGKILL, children too: a machine going down). Figures are printed (`-s`)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.simulator import RunningSimulator, start_simulator
from tests.services.chat.world import (
    SseEvent,
    chat_world,
    read_sse,
    reply_finished,
    streamed_text,
)

pytestmark = [pytest.mark.slow, pytest.mark.alone]
PASSWORD = "correct horse battery staple"
# What a follower may have seen beyond what was stored when the process died: the persist
# interval (0.5 s) of deltas, with room for a loaded machine.
BOUND_SECONDS = 0.8
TERMINAL = ("message.completed", "message.failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Up:
    """`kibitz up` in its own process group, restartable on the same data and port."""

    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: httpx.AsyncClient) -> float:
        """Start and wait until ready; when it was ready (monotonic s)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kibitz", "up", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.data_dir.parent,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir.parent / "up.log", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            assert self.process.poll() is None, (self.data_dir.parent / "up.log").read_text()
            with suppress(httpx.HTTPError):
                if (await http.get(f"{self.base}/readyz", timeout=1)).status_code == 200:
                    return time.monotonic()
            assert time.monotonic() < deadline, "kibitz up did not start"
            await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@asynccontextmanager
async def kibitz_up(tmp_path: Path, **env: str) -> AsyncIterator[tuple[Up, RunningSimulator]]:
    async with start_simulator(ttft_ms=20, gap_ms=30) as sim:
        up = Up(
            data_dir=tmp_path / "data",
            port=free_port(),
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("KIBITZ_")},
                "KIBITZ_DATA_DIR": str(tmp_path / "data"),
                "KIBITZ_LOG_LEVEL": "WARNING",
                "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-simulated",
                "KIBITZ_AGENTS_OPENAI_BASE_URL": sim.openai_base_url,
                "KIBITZ_AGENTS_PLAN_CACHE_SECONDS": "0",
                **env,
            },
        )
        try:
            yield up, sim
        except BaseException:
            log = tmp_path / "up.log"
            print(log.read_text()[-6000:] if log.exists() else "(no log)")
            raise
        finally:
            up.stop()


@dataclass
class User:
    headers: dict[str, str]
    agent_id: str
    chat_id: str = ""
    replies: list[str] = field(default_factory=list)
    seen: list[SseEvent] = field(default_factory=list)


async def new_user(http: httpx.AsyncClient, base: str, n: int) -> User:
    registered = await http.post(
        f"{base}/auth/register", json={"email": f"u{n}@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    agent = await http.post(
        f"{base}/agents/create",
        headers=headers,
        json={"name": "Sim", "llm_provider": "openai", "model": "gpt-4o-mini"},
    )
    assert agent.status_code == 201, agent.text
    return User(headers=headers, agent_id=agent.json()["id"])


async def send(http: httpx.AsyncClient, base: str, user: User, content: str) -> dict[str, Any]:
    body: dict[str, Any] = {"content": content}
    if user.chat_id:
        body["chat_id"] = user.chat_id
    else:
        body["agent_id"] = user.agent_id
    sent = await http.post(f"{base}/chat/send", json=body, headers=user.headers)
    assert sent.status_code == 201, sent.text
    answer: dict[str, Any] = sent.json()
    user.chat_id = answer["chat_id"]
    user.replies.append(answer["agent_message"]["id"])
    return answer


async def history(http: httpx.AsyncClient, base: str, user: User) -> dict[str, dict[str, Any]]:
    page = await http.get(f"{base}/chat/history/{user.chat_id}", headers=user.headers)
    assert page.status_code == 200, page.text
    return {m["id"]: m for m in page.json()["messages"]}


async def follow_until_killed(
    http: httpx.AsyncClient, base: str, user: User, started: asyncio.Event
) -> None:
    """Follow the user's chat, keeping every event, until the connection drops."""
    headers = {**user.headers, "Accept": "text/event-stream"}
    with suppress(httpx.HTTPError):
        async with http.stream("GET", f"{base}/chat/stream/{user.chat_id}", headers=headers) as s:
            async for event in _events(s):
                user.seen.append(event)
                # Killed only once both long replies have streamed: one that had not would be
                # retried from the start after the restart (nothing of it was published).
                long_replies = user.replies[1:]
                if len(long_replies) == 2 and all(
                    sum(
                        e.event == "message.delta" and e.data.get("message_id") == reply_id
                        for e in user.seen
                    )
                    >= 5
                    for reply_id in long_replies
                ):
                    started.set()


async def _events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    while True:
        events = await read_sse(response, limit=1)
        if not events:
            return
        yield events[0]


async def test_kill_9_mid_reply_then_restart_ends_every_reply_and_locks_nobody_out(
    tmp_path: Path,
) -> None:
    async with kibitz_up(tmp_path) as (up, _sim), httpx.AsyncClient(timeout=30) as http:
        await up.start(http)
        users = [await new_user(http, up.base, n) for n in range(3)]
        for user in users:  # a finished exchange first, then two long replies in flight
            first = await send(http, up.base, user, "hi [sim:tokens=2]")
            deadline = time.monotonic() + 20
            while (await history(http, up.base, user))[first["agent_message"]["id"]]["status"] in (
                "pending",
                "streaming",
            ):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        started = [asyncio.Event() for _ in users]
        followers = [
            asyncio.create_task(follow_until_killed(http, up.base, user, flag))
            for user, flag in zip(users, started, strict=True)
        ]
        await asyncio.sleep(0.3)
        for user in users:
            for _ in range(2):
                await send(http, up.base, user, "long [sim:tokens=400] [sim:gap-ms=30]")
        await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in started)), 20)
        await asyncio.sleep(1.0)
        up.kill()
        killed_at = time.monotonic()
        await asyncio.gather(*followers)

        restarted_at = await up.start(http)
        # Followers come back with the last id they saw: each reply ends for them.
        ended: dict[str, tuple[SseEvent, float]] = {}
        for user in users:
            headers = {**user.headers, "Accept": "text/event-stream"}
            last_id = next(e.id for e in reversed(user.seen) if e.id)
            headers["Last-Event-ID"] = last_id
            async with http.stream(
                "GET", f"{up.base}/chat/stream/{user.chat_id}", headers=headers
            ) as stream:
                for reply_id in user.replies[1:]:
                    events = await asyncio.wait_for(
                        read_sse(stream, until=reply_finished(reply_id)), 15
                    )
                    user.seen += events
                    ended[reply_id] = (events[-1], time.monotonic())
        bound_chars = 0
        for user in users:
            stored = await history(http, up.base, user)
            for reply_id in user.replies[1:]:
                event, at = ended[reply_id]
                assert event.event in TERMINAL
                assert stored[reply_id]["status"] in ("failed", "complete")
                assert at - killed_at < 10 + (restarted_at - killed_at), "not ended in time"
                seen = streamed_text(
                    [e for e in user.seen if e.at <= killed_at], reply_id
                )  # what the follower saw before the crash
                kept = stored[reply_id]["content"]
                assert seen.startswith(kept) or kept.startswith(seen), (seen, kept)
                behind = [
                    e
                    for e in user.seen
                    if e.event == "message.delta"
                    and e.data.get("message_id") == reply_id
                    and e.at <= killed_at
                    and e.data["offset"] + len(e.data["content"]) > len(kept)
                ]
                # Whatever the database lacks streamed within the bound before the kill.
                assert all(killed_at - e.at <= BOUND_SECONDS for e in behind), [
                    round(killed_at - e.at, 2) for e in behind
                ]
                bound_chars = max(bound_chars, len(seen) - len(kept))
                assert stored[reply_id]["output_tokens"] > 0  # what streamed is metered
        print(
            f"\nrestart took {restarted_at - killed_at:.1f} s; every reply ended "
            f"{max(at for _, at in ended.values()) - restarted_at:.1f} s after it; "
            f"stored content at most {bound_chars} characters behind followers"
        )
        for user in users:  # nobody is locked out: two sends each go through
            for _ in range(2):
                await send(http, up.base, user, "again [sim:tokens=2]")


async def test_kill_9_before_the_first_token_retries_the_reply_after_restart(
    tmp_path: Path,
) -> None:
    async with kibitz_up(tmp_path) as (up, sim), httpx.AsyncClient(timeout=30) as http:
        await up.start(http)
        user = await new_user(http, up.base, 0)
        content = "slow start [sim:ttft-ms=4000] [sim:tokens=5]"
        answer = await send(http, up.base, user, content)
        asked = time.monotonic() + 5
        while not [r for r in sim.requests if content in str(r["body"])]:
            assert time.monotonic() < asked, "the agent was never asked"
            await asyncio.sleep(0.05)
        up.kill()
        killed_at = time.monotonic()
        await up.start(http)
        reply_id = answer["agent_message"]["id"]
        deadline = time.monotonic() + 20
        while (reply := (await history(http, up.base, user))[reply_id])["status"] in (
            "pending",
            "streaming",
        ):
            assert time.monotonic() < deadline, "the reply was not retried"
            await asyncio.sleep(0.1)
        print(f"\nretried reply completed {time.monotonic() - killed_at:.1f} s after the kill")
        assert reply["status"] == "complete", reply
        assert len([r for r in sim.requests if content in str(r["body"])]) == 2


async def test_twenty_concurrent_sends_by_one_user_generate_exactly_the_cap(
    tmp_path: Path, database: str
) -> None:
    env = {"KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS": "4"}
    async with chat_world(tmp_path, database=database, env=env) as world:
        alice = await world.member()
        chat_id = await world.new_chat(alice)
        generating = [0]
        burst_over = asyncio.Event()

        async def sample() -> None:  # how many replies the model works on at once
            while not burst_over.is_set():
                now = sum(r["outcome"] == "pending" for r in world.simulator.requests)
                generating[0] = max(generating[0], now)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        content = "go [sim:tokens=30] [sim:gap-ms=20]"
        answers = await asyncio.gather(
            *(world.send(alice, f"{content} {i}", chat_id=chat_id) for i in range(20))
        )
        statuses = sorted(answer.status_code for answer in answers)
        for answer in answers:
            if answer.status_code == 201:
                body = answer.json()
                await world.wait_finished(alice, chat_id, body["agent_message"]["id"])
        burst_over.set()
        await sampler
        assert statuses == [201] * 4 + [429] * 16, statuses
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["type"].endswith("/too-many-generations")
        assert generating[0] == 4
        # The slots are free again once the replies ended.
        assert (await world.send(alice, "after [sim:tokens=2]", chat_id=chat_id)).status_code == 201


REDIS_URL = "redis://127.0.0.1:6379/0"


@asynccontextmanager
async def second_chat_process(world: Any, data_dir: Path) -> AsyncIterator[tuple[str, Any]]:
    """`kibitz serve chat` in a process of its own, on the stack's database, Redis and queue."""
    port = free_port()
    platform = world.stack.running.platform
    env = {
        **os.environ,
        "KIBITZ_DATA_DIR": str(data_dir),
        "KIBITZ_INTERNAL_TOKEN": platform.internal_token,
        "KIBITZ_LOG_LEVEL": "WARNING",
        **{f"KIBITZ_{name.upper()}_URL": urls[0] for name, urls in platform.service_urls.items()},
    }
    env.pop("KIBITZ_CHAT_URL", None)
    arguments = ["serve", "chat", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "b.log", "ab"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (data_dir / "b.log").read_text()
            with suppress(httpx.HTTPError):
                if (await world.http.get(f"{url}/readyz", timeout=1)).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the second chat process did not start"
            await asyncio.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.redis
async def test_kill_9_of_one_chat_replica_mid_reply_the_other_ends_its_replies(
    tmp_path: Path,
) -> None:
    prefix = f"chaos{os.getpid()}{int(time.time())}"
    env = {
        "KIBITZ_REDIS_URL": REDIS_URL,
        "KIBITZ_QUEUE_URL": f"{REDIS_URL}?prefix={prefix}",
    }
    async with (
        chat_world(tmp_path, database="postgres", env=env) as world,
        second_chat_process(world, tmp_path) as (b, process),
    ):
        members = [await world.member() for _ in range(4)]
        chats = [await world.new_chat(member) for member in members]
        replies: list[str] = []
        for member, chat_id in zip(members, chats, strict=True):
            sent = await world.http.post(
                f"{b}/chat/send",
                json={"content": "long [sim:tokens=300] [sim:gap-ms=30]", "chat_id": chat_id},
                headers=member.headers,
            )
            assert sent.status_code == 201, sent.text
            replies.append(sent.json()["agent_message"]["id"])
        async with AsyncExitStack() as streams:
            opened = [
                await streams.enter_async_context(world.stream(member, chat_id))  # replica A
                for member, chat_id in zip(members, chats, strict=True)
            ]
            seen = [
                await asyncio.wait_for(first_deltas_of(stream, reply_id, 5), 20)
                for stream, reply_id in zip(opened, replies, strict=True)
            ]
            process.kill()  # SIGKILL: replica B dies mid-reply
            killed_at = time.monotonic()
            ended = []
            for stream, reply_id, events in zip(opened, replies, seen, strict=True):
                rest = await asyncio.wait_for(read_sse(stream, until=reply_finished(reply_id)), 15)
                events += rest
                assert rest[-1].event in TERMINAL
                ended.append((rest[-1], time.monotonic() - killed_at))
        failed = 0
        for member, chat_id, reply_id, events, (end, after) in zip(
            members, chats, replies, seen, ended, strict=True
        ):
            assert after < 10, f"a reply ended {after:.1f} s after the kill"
            stored = await world.wait_finished(member, chat_id, reply_id)
            assert stored["status"] in ("failed", "complete")
            failed += stored["status"] == "failed"
            before = streamed_text([e for e in events if e.at <= killed_at], reply_id)
            assert stored["content"].startswith(before) or before.startswith(stored["content"])
            assert end.data["content"] == stored["content"]
            again = await world.send(member, "again [sim:tokens=2]", chat_id=chat_id)
            assert again.status_code == 201, again.text  # nobody locked out
        print(
            f"\n{failed} of {len(replies)} replies were on the killed replica; all ended within "
            f"{max(after for _, after in ended):.1f} s of the kill"
        )


async def first_deltas_of(stream: httpx.Response, reply_id: str, count: int) -> list[SseEvent]:
    """Read until `count` deltas of the reply have arrived."""
    seen = 0

    def enough(event: SseEvent) -> bool:
        nonlocal seen
        seen += event.event == "message.delta" and event.data.get("message_id") == reply_id
        return seen >= count

    return await read_sse(stream, until=enough)
