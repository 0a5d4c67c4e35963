"""Chat streaming end to end: K users sending and reading streamed replies through the gateway.

    .venv/bin/python bench/chat_stream.py [--ttft-ms 50] [--gap-ms 5] [--tokens 20] [--rounds 6]

Starts the LLM simulator in one child process and the whole kibitz stack all-in-one (gateway,
auth, tenants, users, agents, chat; SQLite in a temp dir; in-process bus) in another, configured
as `kibitz up` runs it (agents in a child process of its own). Each user
gets a tenant, an `openai` agent whose deployment base URL is the simulator, and one chat. Then,
at concurrency 1, 16 and 64 (K users each sending one message after another):

- direct: the same prompt straight to the simulator (`POST /v1/chat/completions`, stream);
- chat: `POST /chat/send` with `Accept: text/event-stream` through the gateway — quota
  reservation, the message and the reply stored, the agent called, deltas fanned out — read
  until `message.completed`.

It prints time to first token p50/p99 for both, what the stack adds, completed replies/s, the
CPU the stack's processes spent per reply, and errors. Targets (issue 5; all-in-one, SQLite,
2 cores, simulator 50 ms TTFT, 20 tokens 5 ms apart): at most 5 ms added at p50 at
concurrency 1; at concurrency 16 at most 93 ms added at p50 and at least 48 completed replies/s.

`--distributed` runs the same against the distributed stack (kibitz serve per service, two chat
replicas, PostgreSQL, Redis queue, bus and fan-out) and prints each process's CPU per reply;
`--compare-modes N` alternates both stacks N times and prints the distributed stack's CPU per
reply against all-in-one's (issue 17's target: at most 1.3x).

The plans file raises the Basic plan's limits so the benchmark measures streaming, not quotas.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from simulated_stack import cpu_seconds, percentile, simulated_stack

PASSWORD = "correct horse battery staple"
LEVELS = (1, 16, 64)
PROMPT = "Tell me something."


# --- measuring ------------------------------------------------------------------------------

Sample = tuple[float, float, bool]  # (time to first token s, whole reply s, ok)
ERRORS: Counter[str] = Counter()


async def run_level(
    workers: list[Callable[[], Awaitable[Sample]]], rounds: int
) -> tuple[list[Sample], float]:
    """Each worker makes `rounds` calls one after another; all workers at once."""
    samples: list[Sample] = []

    async def loop(one: Callable[[], Awaitable[Sample]]) -> None:
        for _ in range(rounds):
            samples.append(await one())

    started = time.perf_counter()
    await asyncio.gather(*(loop(one) for one in workers))
    return samples, time.perf_counter() - started


async def bench(
    args: argparse.Namespace,
    sim_url: str,
    urls: dict[str, str],
    stack_pids: list[int],
    names: list[str] | None = None,
) -> dict[int, float]:
    """Print each level's figures; the stack's CPU per reply (ms) by level."""
    cpu_per_reply: dict[int, float] = {}
    gateway = urls["gateway"]
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    timeout = httpx.Timeout(120)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as http:

        async def new_user() -> dict[str, Any]:
            email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
            registered = await http.post(
                f"{gateway}/auth/register", json={"email": email, "password": PASSWORD}
            )
            registered.raise_for_status()
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            created = await http.post(
                f"{gateway}/agents/create",
                json={"name": "Bench", "llm_provider": "openai", "model": "gpt-4o-mini"},
                headers=headers,
            )
            created.raise_for_status()
            first = await http.post(
                f"{gateway}/chat/send",
                json={"content": PROMPT, "agent_id": created.json()["id"]},
                headers=headers,
            )
            first.raise_for_status()
            return {
                "headers": headers,
                "chat_id": first.json()["chat_id"],
                "agent_id": created.json()["id"],
            }

        users = []
        for _ in range(max(args.levels)):
            users.append(await new_user())

        direct_body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
        }

        async def direct() -> Sample:
            started = time.perf_counter()
            first = 0.0
            async with http.stream(
                "POST",
                f"{sim_url}/v1/chat/completions",
                json=direct_body,
                headers={"Authorization": "Bearer sk-bench"},
            ) as response:
                if response.status_code != 200:
                    return 0.0, 0.0, False
                async for line in response.aiter_lines():
                    if line.startswith("data:") and '"content"' in line and not first:
                        first = time.perf_counter() - started
            return first, time.perf_counter() - started, first > 0

        def through_chat(
            user: dict[str, Any], base: str = gateway
        ) -> Callable[[], Awaitable[Sample]]:
            headers = {**user["headers"], "Accept": "text/event-stream"}
            body = {"content": PROMPT, "chat_id": user["chat_id"]}

            async def one() -> Sample:
                started = time.perf_counter()
                first = 0.0
                ok = failed = False
                try:
                    async with http.stream(
                        "POST", f"{base}/chat/send", json=body, headers=headers
                    ) as response:
                        if response.status_code != 201:
                            await response.aread()
                            ERRORS[f"HTTP {response.status_code}"] += 1
                            return 0.0, 0.0, False
                        async for line in response.aiter_lines():
                            if line == "event: message.delta" and not first:
                                first = time.perf_counter() - started
                            elif line == "event: message.completed":
                                # Read on to the end of the body (the server ends it next), as
                                # the direct path does: a response left unread closes its
                                # connection, and the next send would open a new one.
                                ok = True
                            elif line == "event: message.failed":
                                failed = True
                            elif failed and line.startswith("data:"):
                                reason = json.loads(line[5:]).get("error") or "?"
                                ERRORS[f"failed: {reason[:60]}"] += 1
                                break
                except httpx.HTTPError as exc:
                    ERRORS[type(exc).__name__] += 1
                    return 0.0, 0.0, False
                return first, time.perf_counter() - started, ok and first > 0

            return one

        def through_agents(user: dict[str, Any]) -> Callable[[], Awaitable[Sample]]:
            body = {
                "agent_id": user["agent_id"],
                "messages": [{"role": "user", "content": PROMPT}],
                "stream": True,
            }

            async def one() -> Sample:
                started = time.perf_counter()
                first = 0.0
                async with http.stream(
                    "POST", f"{urls['agents']}/agents/respond", json=body, headers=user["headers"]
                ) as response:
                    async for line in response.aiter_lines():
                        if line == "event: delta" and not first:
                            first = time.perf_counter() - started
                return first, time.perf_counter() - started, first > 0

            return one

        # Warm both paths (connections, JWKS, plan caches).
        for user in users[:4]:
            for _ in range(3):
                await direct()
                await through_chat(user)()

        print(
            f"simulator: ttft {args.ttft_ms} ms, {args.tokens} tokens, {args.gap_ms} ms apart; "
            f"each of K users sends {args.rounds} messages in a row (at least 30 at K=1)"
        )
        print(
            f"{'K':>3} | {'direct ttft p50/p99 ms':>22} | {'chat ttft p50/p99 ms':>22} | "
            f"{'added p50/p99 ms':>17} | {'replies/s direct':>16} | {'replies/s chat':>14} | "
            f"{'cpu/reply ms':>12} | errors"
        )
        for level in args.levels:
            ERRORS.clear()
            rounds = max(args.rounds, 30) if level == 1 else args.rounds
            d_samples, d_wall = await run_level([direct] * level, rounds)
            cpu_before = [cpu_seconds(pid) for pid in stack_pids]
            c_samples, c_wall = await run_level(
                [through_chat(user) for user in users[:level]], rounds
            )
            cpu_spent = [
                cpu_seconds(pid) - before
                for pid, before in zip(stack_pids, cpu_before, strict=True)
            ]
            stack_cpu = sum(cpu_spent)
            cpu_per_reply[level] = stack_cpu * 1000 / max(1, len(c_samples))
            d_ok = [s for s in d_samples if s[2]]
            c_ok = [s for s in c_samples if s[2]]
            errors = len(c_samples) - len(c_ok)
            d_ttft = [s[0] * 1000 for s in d_ok]
            c_ttft = [s[0] * 1000 for s in c_ok] or [float("nan")]
            d50, d99 = statistics.median(d_ttft), percentile(d_ttft, 0.99)
            c50, c99 = statistics.median(c_ttft), percentile(c_ttft, 0.99)
            print(
                f"{level:>3} | {d50:>10.1f} / {d99:>9.1f} | {c50:>10.1f} / {c99:>9.1f} | "
                f"{c50 - d50:>8.1f} / {c99 - d99:>6.1f} | {len(d_ok) / d_wall:>16.1f} | "
                f"{len(c_ok) / c_wall:>14.1f} | "
                f"{cpu_per_reply[level]:>12.1f} | {errors}"
                + (f" ({', '.join(f'{k}: {v}' for k, v in ERRORS.items())})" if ERRORS else "")
            )
            if names:  # where the CPU went, per process (ms per reply)
                shares = sorted(zip(cpu_spent, names, strict=True), reverse=True)
                print(
                    "      cpu/reply by process: "
                    + ", ".join(
                        f"{name} {spent * 1000 / max(1, len(c_samples)):.1f}"
                        for spent, name in shares
                    )
                )
        if args.compare_modes:
            return cpu_per_reply
        # Where the added time goes at concurrency 1: each layer's first token, alone.
        layers = [
            ("simulator", direct),
            ("agents service", through_agents(users[0])),
            ("chat service (no gateway)", through_chat(users[0], urls["chat"])),
            ("gateway + chat", through_chat(users[0])),
        ]
        print("concurrency 1, time to first token p50 by entry point:")
        for name, one in layers:
            samples, _ = await run_level([one], 30)
            ttft = statistics.median(s[0] * 1000 for s in samples if s[2])
            print(f"  {name:<28} {ttft:6.1f} ms")
    return cpu_per_reply


def compare_modes(args: argparse.Namespace) -> None:
    """All-in-one and distributed alternated `args.compare_modes` times: the distributed stack's
    CPU per reply against all-in-one's of the same alternation (issue 17's target: <= 1.3x)."""
    ratios: dict[int, list[float]] = {level: [] for level in args.levels}
    for alternation in range(1, args.compare_modes + 1):
        figures: dict[bool, dict[int, float]] = {}
        for distributed in (False, True):
            print(f"-- alternation {alternation}: {'distributed' if distributed else 'all-in-one'}")
            with simulated_stack(
                ttft_ms=args.ttft_ms,
                gap_ms=args.gap_ms,
                tokens=args.tokens,
                distributed=distributed,
            ) as stack:
                figures[distributed] = asyncio.run(
                    bench(args, stack.sim_url, stack.urls, stack.pids, stack.names)
                )
        for level in args.levels:
            ratios[level].append(figures[True][level] / figures[False][level])
    for level, found in ratios.items():
        shown = " / ".join(f"{ratio:.2f}x" for ratio in found)
        print(f"K={level}: distributed CPU per reply against all-in-one: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="messages per user per level")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="kibitz serve per service, 2 chat replicas, PostgreSQL, Redis queue/bus/fan-out",
    )
    parser.add_argument(
        "--compare-modes",
        type=int,
        default=0,
        metavar="N",
        help="run all-in-one and distributed N times each, alternating, and print the ratio of "
        "their CPU per reply",
    )
    args = parser.parse_args()
    if args.compare_modes:
        compare_modes(args)
        return
    with simulated_stack(
        ttft_ms=args.ttft_ms, gap_ms=args.gap_ms, tokens=args.tokens, distributed=args.distributed
    ) as stack:
        if args.distributed:
            print("distributed: 2 chat replicas, PostgreSQL, Redis queue/bus/fan-out")
        asyncio.run(bench(args, stack.sim_url, stack.urls, stack.pids, stack.names))


if __name__ == "__main__":
    main()
