"""The OpenAI-compatible endpoint's time to first token, beside the other ways to reach an agent.

    .venv/bin/python bench/openai_compat.py [--ttft-ms 20] [--gap-ms 5] [--tokens 20] [--rounds 8]

Starts the LLM simulator in one child process and the whole kibitz stack all-in-one (gateway,
auth, tenants, users, agents, chat; SQLite in a temp dir) in another, configured as `kibitz up`
runs it (agents in a child process of its own). Each user gets a tenant, an `openai` agent whose
deployment base URL is the simulator, a chat with it and a personal API key. Then, at
concurrency 1 and 16 (K users each streaming one reply after another), the same prompt:

- direct: straight to the simulator (`POST /v1/chat/completions`, stream);
- /v1: `POST /v1/chat/completions` through the gateway with the user's `kbz_` key (the key
  exchanged for an access token, quota reserved and tokens recorded with the tenants service);
- respond: `POST /agents/respond` (stream) through the gateway with an access token;
- chat: `POST /chat/send` (`Accept: text/event-stream`) through the gateway: the reply stored too.

Every client is plain httpx reading SSE lines, so the figures differ only by the server side.
It prints time to first token p50/p99 for each and what /v1 adds over the simulator and over
/agents/respond. Target (issue 24): /v1 within 2 ms of /agents/respond (it stores nothing).

The plans file raises the Basic plan's limits so the benchmark measures streaming, not quotas.
Hold the CPU lock while it runs: `flock /tmp/kibitz-cpu.lock .venv/bin/python bench/…`.
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
from simulated_stack import percentile, simulated_stack

PASSWORD = "correct horse battery staple"
PROMPT = "Tell me something."
LEVELS = (1, 16)
ERRORS: Counter[str] = Counter()

Sample = tuple[float, bool]  # (time to first token s, ok)
One = Callable[[], Awaitable[Sample]]


# --- measuring ------------------------------------------------------------------------------


async def run_level(workers: list[One], rounds: int) -> list[Sample]:
    """Each worker makes `rounds` calls one after another; all workers at once."""
    samples: list[Sample] = []

    async def loop(one: One) -> None:
        for _ in range(rounds):
            samples.append(await one())

    await asyncio.gather(*(loop(one) for one in workers))
    return samples


def has_content(line: str) -> bool:
    """Whether an OpenAI stream line carries a piece of the reply (not the role, not usage)."""
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[6:]).get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


async def first_token(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    is_token: Callable[[str], bool],
    expected_status: int = 200,
) -> Sample:
    """Stream one answer to its end; the time until its first token."""
    started = time.perf_counter()
    first = 0.0
    try:
        async with http.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != expected_status:
                await response.aread()
                ERRORS[f"{url.rsplit('/', 2)[-2]}: HTTP {response.status_code}"] += 1
                return 0.0, False
            async for line in response.aiter_lines():
                if not first and is_token(line):
                    first = time.perf_counter() - started
    except httpx.HTTPError as exc:
        ERRORS[type(exc).__name__] += 1
        return 0.0, False
    return first, first > 0


async def bench(args: argparse.Namespace, sim_url: str, urls: dict[str, str]) -> None:
    gateway = urls["gateway"]
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as http:

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
            chat = await http.post(
                f"{gateway}/chat/send",
                json={"content": PROMPT, "agent_id": created.json()["id"]},
                headers=headers,
            )
            chat.raise_for_status()
            key = await http.post(
                f"{gateway}/auth/api-keys", json={"name": "bench"}, headers=headers
            )
            key.raise_for_status()
            return {
                "headers": headers,
                "key_headers": {"Authorization": f"Bearer {key.json()['key']}"},
                "agent_id": created.json()["id"],
                "chat_id": chat.json()["chat_id"],
            }

        users = [await new_user() for _ in range(max(args.levels))]
        messages = [{"role": "user", "content": PROMPT}]

        def direct(_: dict[str, Any]) -> One:
            body = {"model": "gpt-4o-mini", "messages": messages, "stream": True}
            headers = {"Authorization": "Bearer sk-bench"}
            url = f"{sim_url}/v1/chat/completions"
            return lambda: first_token(http, url, body, headers, has_content)

        def through_v1(user: dict[str, Any]) -> One:
            body = {"model": user["agent_id"], "messages": messages, "stream": True}
            url = f"{gateway}/v1/chat/completions"
            return lambda: first_token(http, url, body, user["key_headers"], has_content)

        def through_respond(user: dict[str, Any]) -> One:
            body = {"agent_id": user["agent_id"], "messages": messages, "stream": True}
            url = f"{gateway}/agents/respond"
            return lambda: first_token(
                http, url, body, user["headers"], lambda line: line == "event: delta"
            )

        def through_chat(user: dict[str, Any]) -> One:
            body = {"content": PROMPT, "chat_id": user["chat_id"]}
            headers = {**user["headers"], "Accept": "text/event-stream"}
            url = f"{gateway}/chat/send"
            return lambda: first_token(
                http, url, body, headers, lambda line: line == "event: message.delta", 201
            )

        paths = {
            "direct": direct,
            "/v1": through_v1,
            "respond": through_respond,
            "chat": through_chat,
        }
        # Warm every path (connections, key exchange, JWKS, plan caches).
        for user in users[:4]:
            for make in paths.values():
                for _ in range(3):
                    await make(user)()

        print(
            f"simulator: ttft {args.ttft_ms} ms, {args.tokens} tokens, {args.gap_ms} ms apart; "
            f"each of K users streams {args.rounds} replies per path in a row (30 at K=1), "
            "the paths taking turns"
        )
        header = " | ".join(f"{name + ' p50/p99 ms':>22}" for name in paths)
        print(f"{'K':>3} | {header} | {'/v1 - direct':>12} | {'/v1 - respond':>13} | errors")
        for level in args.levels:
            ERRORS.clear()
            rounds = max(args.rounds, 30) if level == 1 else args.rounds
            ttft: dict[str, list[float]] = {name: [] for name in paths}
            failed = 0
            # Paths take turns a few rounds at a time, so a busy machine weighs on all alike.
            for _ in range(rounds // 2 or 1):
                for name, make in paths.items():
                    samples = await run_level([make(user) for user in users[:level]], 2)
                    ttft[name] += [s[0] * 1000 for s in samples if s[1]]
                    failed += sum(1 for s in samples if not s[1])
            p50 = {name: statistics.median(values) for name, values in ttft.items()}
            p99 = {name: percentile(values, 0.99) for name, values in ttft.items()}
            cells = " | ".join(f"{p50[name]:>10.2f} / {p99[name]:>9.2f}" for name in paths)
            print(
                f"{level:>3} | {cells} | {p50['/v1'] - p50['direct']:>12.2f} | "
                f"{p50['/v1'] - p50['respond']:>13.2f} | {failed}"
                + (f" ({', '.join(f'{k}: {v}' for k, v in ERRORS.items())})" if ERRORS else ""),
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="replies per user, path and level")
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    args = parser.parse_args()
    with simulated_stack(ttft_ms=args.ttft_ms, gap_ms=args.gap_ms, tokens=args.tokens) as stack:
        asyncio.run(bench(args, stack.sim_url, stack.urls))


if __name__ == "__main__":
    main()
