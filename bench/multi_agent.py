"""Turns of several agents end to end: a 3-agent panel beside a single-agent send, through the
gateway, at concurrency 1 and 16.

    .venv/bin/python bench/multi_agent.py [--ttft-ms 50] [--gap-ms 5] [--tokens 20] [--rounds 6]

Starts the LLM simulator and the whole stack all-in-one as bench/chat_stream.py does (SQLite, the
in-process bus and queue). Each of K users is on the Gold plan with three `openai` agents (the
simulator behind them), a one-agent chat and a panel chat of the three. At each concurrency K
(each user sending one message after another, streamed, read to the end):

- single: a send to the one-agent chat; its time to first token;
- panel: a send to the panel chat: time to the first agent's first token (target: within 2 ms
  of the single-agent send at p50), the hand-over from one agent's `message.completed` to the
  next agent's first delta beyond the model's own time to first token (the simulator's, measured
  straight at the same concurrency; target at most 5 ms at p50), and turns/s.

An orchestrated turn (the orchestrator delegating to two agents through tool calls) belongs here
too once that mode lands: add it to MODES with the sends it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chat_stream import free_port, generous_plans, percentile, serve

PASSWORD = "correct horse battery staple"
PROMPT = "What should we do next?"
LEVELS = (1, 16)
AGENTS = ("Planner", "Critic", "Editor")
ERRORS: Counter[str] = Counter()


@dataclass
class Turn:
    """One streamed send, read to its end: when each reply's first delta and end arrived (s
    after the send)."""

    ok: bool = False
    first_delta: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    @property
    def ttft(self) -> float:
        """Time to the first agent's first token."""
        return self.first_delta[self.order[0]]

    def hand_overs(self) -> list[float]:
        """From each reply's end to the next one's first token."""
        return [
            self.first_delta[after] - self.ended[before]
            for before, after in zip(self.order, self.order[1:], strict=False)
        ]


async def streamed_send(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> Turn:
    """POST /chat/send with Accept: text/event-stream, read until the server ends the body."""
    turn = Turn()
    started = time.perf_counter()
    event = ""
    try:
        async with http.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 201:
                await response.aread()
                ERRORS[f"HTTP {response.status_code}"] += 1
                return turn
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in (
                    "message.created",
                    "message.delta",
                    "message.completed",
                    "message.failed",
                ):
                    now = time.perf_counter() - started
                    data = json.loads(line[5:])
                    if event == "message.created" and data.get("sender") == "agent":
                        turn.order.append(str(data["id"]))
                    elif event == "message.delta":
                        turn.first_delta.setdefault(str(data["message_id"]), now)
                    elif event == "message.completed" and data.get("sender") == "agent":
                        turn.ended[str(data["id"])] = now
                    elif event == "message.failed":
                        ERRORS[f"failed: {(data.get('error') or '?')[:60]}"] += 1
                        return turn
    except httpx.HTTPError as exc:
        ERRORS[type(exc).__name__] += 1
        return turn
    turn.ok = bool(turn.order) and all(
        m in turn.ended and m in turn.first_delta for m in turn.order
    )
    return turn


async def run_level(
    workers: list[Callable[[], Awaitable[Turn]]], rounds: int
) -> tuple[list[Turn], float]:
    """Each worker sends `rounds` times in a row; all workers at once."""
    turns: list[Turn] = []

    async def loop(one: Callable[[], Awaitable[Turn]]) -> None:
        for _ in range(rounds):
            turns.append(await one())

    started = time.perf_counter()
    await asyncio.gather(*(loop(one) for one in workers))
    return turns, time.perf_counter() - started


async def direct_ttft(http: httpx.AsyncClient, sim_url: str, level: int, rounds: int) -> float:
    """The simulator's own time to first token at this concurrency, p50 (ms)."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
    }
    samples: list[float] = []

    async def one() -> None:
        for _ in range(rounds):
            started = time.perf_counter()
            async with http.stream(
                "POST",
                f"{sim_url}/v1/chat/completions",
                json=body,
                headers={"Authorization": "Bearer sk"},
            ) as response:
                first = 0.0
                async for line in response.aiter_lines():
                    if line.startswith("data:") and '"content"' in line and not first:
                        first = time.perf_counter() - started
                samples.append(first * 1000)

    await asyncio.gather(*(one() for _ in range(level)))
    return statistics.median(samples)


async def bench(args: argparse.Namespace, sim_url: str, urls: dict[str, str]) -> None:
    gateway = urls["gateway"]
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(120), limits=limits, trust_env=False
    ) as http:

        async def new_user() -> dict[str, Any]:
            email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
            registered = await http.post(
                f"{gateway}/auth/register", json={"email": email, "password": PASSWORD}
            )
            registered.raise_for_status()
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            (
                await http.post(
                    f"{gateway}/tenants/subscribe", json={"plan": "gold"}, headers=headers
                )
            ).raise_for_status()
            agents = []
            for name in AGENTS:
                created = await http.post(
                    f"{gateway}/agents/create",
                    json={"name": name, "llm_provider": "openai", "model": "gpt-4o-mini"},
                    headers=headers,
                )
                created.raise_for_status()
                agents.append(created.json()["id"])
            chats = {}
            for mode, agent_ids in (("single", agents[:1]), ("panel", agents)):
                created = await http.post(
                    f"{gateway}/chat/chats",
                    json={"agent_ids": agent_ids, "mode": "panel" if mode == "panel" else "direct"},
                    headers=headers,
                )
                created.raise_for_status()
                chats[mode] = created.json()["id"]
            return {"headers": {**headers, "Accept": "text/event-stream"}, "chats": chats}

        users = [await new_user() for _ in range(max(args.levels))]

        def sender(user: dict[str, Any], mode: str) -> Callable[[], Awaitable[Turn]]:
            body = {"content": PROMPT, "chat_id": user["chats"][mode]}
            return lambda: streamed_send(http, f"{gateway}/chat/send", body, user["headers"])

        # MODES: what a turn of each kind sends (an orchestrated turn joins here).
        modes = ("single", "panel")
        for user in users[:4]:  # warm: connections, JWKS, plan caches
            for mode in modes:
                await sender(user, mode)()

        print(
            f"simulator: ttft {args.ttft_ms} ms, {args.tokens} tokens, {args.gap_ms} ms apart; "
            f"panel of {len(AGENTS)}; each of K users sends {args.rounds} messages of each kind "
            "in a row"
        )
        print(
            f"{'K':>3} | {'single ttft p50/p99':>19} | {'panel 1st ttft p50/p99':>22} | "
            f"{'diff p50':>8} | {'hand-over p50/p99':>17} | {'beyond ttft p50':>15} | "
            f"{'turns/s':>7} | {'single/s':>8} | errors"
        )
        for level in args.levels:
            ERRORS.clear()
            rounds = max(args.rounds, 20) if level == 1 else args.rounds
            model_ttft = await direct_ttft(http, sim_url, level, 5)
            singles, _ = await run_level([sender(u, "single") for u in users[:level]], rounds)
            panels, panel_wall = await run_level(
                [sender(u, "panel") for u in users[:level]], rounds
            )
            single_wall_turns, single_wall = await run_level(
                [sender(u, "single") for u in users[:level]], rounds
            )
            singles += single_wall_turns
            s_ok = [t.ttft * 1000 for t in singles if t.ok]
            p_ok = [t for t in panels if t.ok]
            p_ttft = [t.ttft * 1000 for t in p_ok]
            hand = [gap * 1000 for t in p_ok for gap in t.hand_overs()]
            s50, s99 = statistics.median(s_ok), percentile(s_ok, 0.99)
            p50, p99 = statistics.median(p_ttft), percentile(p_ttft, 0.99)
            h50, h99 = statistics.median(hand), percentile(hand, 0.99)
            errors = len(panels) + len(singles) - len(p_ok) - len(s_ok)
            print(
                f"{level:>3} | {s50:>8.1f} / {s99:>8.1f} | {p50:>10.1f} / {p99:>9.1f} | "
                f"{p50 - s50:>8.1f} | {h50:>7.1f} / {h99:>7.1f} | {h50 - model_ttft:>15.1f} | "
                f"{len(p_ok) / panel_wall:>7.1f} | "
                f"{len(single_wall_turns) / single_wall:>8.1f} | {errors}"
                + (f" ({', '.join(f'{k}: {v}' for k, v in ERRORS.items())})" if ERRORS else "")
            )
        print(
            "(hand-over: an agent's message.completed to the next agent's first delta; beyond ttft:"
        )
        print(
            " minus the simulator's own time to first token measured straight at that concurrency)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=6, help="sends of each kind per user per level"
    )
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz.simulator",
            "--port",
            str(sim_port),
            "--ttft-ms",
            str(args.ttft_ms),
            "--gap-ms",
            str(args.gap_ms),
            "--tokens",
            str(args.tokens),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="kibitz-multi-agent-bench-") as data_dir:
        plans = Path(data_dir) / "plans.json"
        generous_plans(plans)
        env = {
            **os.environ,
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-bench",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": f"{sim_url}/v1",
            "KIBITZ_TENANTS_PLANS_FILE": str(plans),
            "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000000",
            "KIBITZ_LOG_LEVEL": "WARNING",
        }
        env.pop("KIBITZ_REDIS_URL", None)
        stack = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert stack.stdout is not None
            urls = json.loads(stack.stdout.readline())
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{sim_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the simulator did not start")
                time.sleep(0.1)
            asyncio.run(bench(args, sim_url, urls))
        finally:
            if stack.stdin is not None:
                stack.stdin.close()
            try:
                stack.wait(15)
            except subprocess.TimeoutExpired:
                stack.kill()
            simulator.terminate()
            simulator.wait(10)


if __name__ == "__main__":
    main()
