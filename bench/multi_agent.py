"""Turns of several agents end to end: a 3-agent panel and a 2-delegate orchestrated turn beside a
single-agent send, through the gateway, at concurrency 1 and 16.

    .venv/bin/python bench/multi_agent.py [--ttft-ms 50] [--gap-ms 5] [--tokens 20] [--rounds 6]

Starts the LLM simulator and the whole stack all-in-one (bench/simulated_stack.py: SQLite, the
in-process bus and queue). Each of K users is on the Gold plan with three `openai` agents (the
simulator behind them), a one-agent chat, a panel chat of the three and an orchestrated one (the
first agent consulting the other two). At each concurrency K (each user sending one message after
another, streamed, read to the end):

- single: a send to the one-agent chat; its time to first token;
- panel: a send to the panel chat: time to the first agent's first token (target: within 2 ms
  of the single-agent send at p50), the hand-over from one agent's `message.completed` to the
  next agent's first delta beyond the model's own time to first token (the simulator's, measured
  straight at the same concurrency; target at most 5 ms at p50), and turns/s;
- orchestrated: a send whose orchestrator calls `ask_critic` and `ask_editor` (simulator
  markers). Its first round only calls tools (no token), so the turn's first token is the first
  delegate's: compared with the single send after taking off that tool-call round as the
  simulator takes it straight at the same concurrency. Hand-overs: the first delegate's end to
  the second's first token, and the second's end to the orchestrator's final answer's first
  token, beyond the model's own time to first token; turns/s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from simulated_stack import percentile, simulated_stack

PASSWORD = "correct horse battery staple"
PROMPT = "What should we do next?"
LEVELS = (1, 16)
AGENTS = ("Planner", "Critic", "Editor")
# The orchestrator's first round: the simulator makes it ask the other two.
DELEGATIONS = (
    '[sim:tool=ask_critic;args={"task": "Review the plan."}] '
    '[sim:tool=ask_editor;args={"task": "Tighten the wording."}]'
)
ORCHESTRATED = f"{PROMPT} {DELEGATIONS}"
ERRORS: Counter[str] = Counter()


@dataclass
class Turn:
    """One streamed send, read to its end: when each reply's first delta and end arrived (s
    after the send)."""

    ok: bool = False
    first_delta: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def speaking(self) -> list[str]:
        """The replies in the order their first tokens came (an orchestrator's final answer
        comes after its delegates')."""
        return sorted(self.order, key=lambda message: self.first_delta[message])

    @property
    def ttft(self) -> float:
        """Time to the turn's first token."""
        return self.first_delta[self.speaking()[0]]

    def hand_overs(self) -> list[float]:
        """From each reply's end to the next one's first token."""
        speaking = self.speaking()
        return [
            self.first_delta[after] - self.ended[before]
            for before, after in itertools.pairwise(speaking)
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


async def direct_tool_round(
    http: httpx.AsyncClient, sim_url: str, level: int, rounds: int
) -> float:
    """The orchestrator's first round (tool calls only) as the simulator takes it straight at
    this concurrency, read to its end, p50 (ms)."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"ask_{name.casefold()}",
                "description": f"Ask {name}.",
                "parameters": {"type": "object", "properties": {"task": {"type": "string"}}},
            },
        }
        for name in AGENTS[1:]
    ]
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": ORCHESTRATED}],
        "tools": tools,
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
                await response.aread()
            samples.append((time.perf_counter() - started) * 1000)

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
            for mode, agent_ids in (
                ("direct", agents[:1]),
                ("panel", agents),
                ("orchestrated", agents),
            ):
                created = await http.post(
                    f"{gateway}/chat/chats",
                    json={"agent_ids": agent_ids, "mode": mode},
                    headers=headers,
                )
                created.raise_for_status()
                chats[mode] = created.json()["id"]
            return {"headers": {**headers, "Accept": "text/event-stream"}, "chats": chats}

        users = [await new_user() for _ in range(max(args.levels))]

        def sender(user: dict[str, Any], mode: str) -> Callable[[], Awaitable[Turn]]:
            content = ORCHESTRATED if mode == "orchestrated" else PROMPT
            body = {"content": content, "chat_id": user["chats"][mode]}
            return lambda: streamed_send(http, f"{gateway}/chat/send", body, user["headers"])

        # What a turn of each kind sends: its chat's mode.
        modes = ("direct", "panel", "orchestrated")
        for user in users[:4]:  # warm: connections, JWKS, plan caches
            for mode in modes:
                await sender(user, mode)()

        print(
            f"simulator: ttft {args.ttft_ms} ms, {args.tokens} tokens, {args.gap_ms} ms apart; "
            f"panel of {len(AGENTS)}, an orchestrator consulting {len(AGENTS) - 1}; each of K "
            f"users sends {args.rounds} messages of each kind in a row (20 at K=1), the kinds "
            "taking turns"
        )
        results = [
            await measure_level(args, http, sim_url, sender, users, level) for level in args.levels
        ]
        print(
            f"\n{'K':>3} | {'single ttft p50/p99':>19} | {'single/s':>8} | "
            f"{'model ttft':>10} | {'tool round':>10} | errors"
        )
        for level, r in zip(args.levels, results, strict=True):
            print(
                f"{level:>3} | {r.single[0]:>8.1f} / {r.single[1]:>8.1f} | {r.single_rate:>8.1f} | "
                f"{r.model_ttft:>10.1f} | {r.tool_round:>10.1f} | {r.errors}"
                + (f" ({r.error_kinds})" if r.error_kinds else "")
            )
        for kind in ("panel", "orchestrated"):
            print(
                f"\n{kind}: {'K':>3} | {'1st ttft p50/p99':>17} | {'vs single p50':>13} | "
                f"{'hand-over p50/p99':>17} | {'beyond ttft p50':>15} | {'turns/s':>7} | "
                f"{'/ single/s':>10}"
            )
            for level, r in zip(args.levels, results, strict=True):
                k = r.kinds[kind]
                print(
                    f"{'':>{len(kind) + 2}}{level:>3} | {k.ttft[0]:>7.1f} / {k.ttft[1]:>7.1f} | "
                    f"{k.ttft[0] - k.ahead - r.single[0]:>+13.1f} | "
                    f"{k.hand[0]:>7.1f} / {k.hand[1]:>7.1f} | {k.hand[0] - r.model_ttft:>+15.1f} | "
                    f"{k.rate:>7.1f} | {k.rate / r.single_rate:>10.2f}"
                )
        print(
            "\n(vs single: the turn's first token minus the single send's, both p50; for the "
            "orchestrated turn after\n taking off its tool-call round as the simulator takes it "
            "straight. hand-over: an agent's message.completed\n to the next agent's first delta; "
            "beyond ttft: minus the simulator's own time to first token at that concurrency)"
        )


@dataclass
class KindFigures:
    """A kind of turn's figures at one concurrency (ms, and turns/s)."""

    ttft: tuple[float, float]
    hand: tuple[float, float]
    rate: float
    # What the turn waits for before its first token that a single send does not (ms).
    ahead: float = 0.0


@dataclass
class LevelFigures:
    """Every kind's figures at one concurrency, and the baselines measured beside them."""

    single: tuple[float, float]
    single_rate: float
    model_ttft: float
    tool_round: float
    kinds: dict[str, KindFigures]
    errors: int
    error_kinds: str


def p50_p99(values: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile (nan for no values)."""
    if not values:
        return float("nan"), float("nan")
    return statistics.median(values), percentile(values, 0.99)


async def measure_level(
    args: argparse.Namespace,
    http: httpx.AsyncClient,
    sim_url: str,
    sender: Callable[[dict[str, Any], str], Callable[[], Awaitable[Turn]]],
    users: list[dict[str, Any]],
    level: int,
) -> LevelFigures:
    """Single sends, panels and orchestrated turns at concurrency `level`, taking turns a
    couple of rounds at a time (a busy moment of the machine weighs on every kind alike)."""
    ERRORS.clear()
    rounds = max(args.rounds, 20) if level == 1 else args.rounds
    model_ttft = await direct_ttft(http, sim_url, level, 5)
    tool_round = await direct_tool_round(http, sim_url, level, 5)
    turns: dict[str, list[Turn]] = {"direct": [], "panel": [], "orchestrated": []}
    walls: dict[str, float] = dict.fromkeys(turns, 0.0)
    for _ in range(rounds // 2 or 1):
        for mode in turns:
            done, wall = await run_level([sender(user, mode) for user in users[:level]], 2)
            turns[mode] += done
            walls[mode] += wall

    def figures(mode: str, ahead: float = 0.0) -> KindFigures:
        ok = [t for t in turns[mode] if t.ok]
        hand = [gap * 1000 for t in ok for gap in t.hand_overs()]
        return KindFigures(
            ttft=p50_p99([t.ttft * 1000 for t in ok]),
            hand=p50_p99(hand),
            rate=len(ok) / walls[mode],
            ahead=ahead,
        )

    single = figures("direct")
    return LevelFigures(
        single=single.ttft,
        single_rate=single.rate,
        model_ttft=model_ttft,
        tool_round=tool_round,
        kinds={"panel": figures("panel"), "orchestrated": figures("orchestrated", tool_round)},
        errors=sum(not t.ok for done in turns.values() for t in done),
        error_kinds=", ".join(f"{k}: {v}" for k, v in ERRORS.items()),
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
    args = parser.parse_args()
    with simulated_stack(ttft_ms=args.ttft_ms, gap_ms=args.gap_ms, tokens=args.tokens) as stack:
        asyncio.run(bench(args, stack.sim_url, stack.urls))


if __name__ == "__main__":
    main()
