"""Agents streaming overhead: streamed replies through `/agents/respond` versus straight to a model.

    .venv/bin/python bench/agents_stream.py [--requests N] [--ttft-ms 20] [--gap-ms 5] [--tokens 32]

Starts the LLM simulator in one child process and kibitz all-in-one (auth + agents, SQLite in a
temp dir) in another, registers a user, creates an `openai` agent whose deployment base URL is the
simulator, then at concurrency 1, 16 and 64 measures:

- direct: the `openai` SDK streaming `chat.completions` straight from the simulator;
- agents: `POST /agents/respond` with `stream: true` (SSE), which calls the simulator through the
  same SDK.

It prints time to first token p50/p99 for both, what the agents service adds, tokens/s
(aggregate over the concurrent streams), and the CPU the agents process spent per streamed
reply (ms; with auth in the same process, which only serves the JWKS once). Targets (issue 4):
at most 2 ms added at p50 at concurrency 1 and at most 20 ms at concurrency 16.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import openai

PASSWORD = "correct horse battery staple"
LEVELS = (1, 16, 64)


# --- the stack under test (child process) -------------------------------------------------


def serve(data_dir: str) -> None:
    """Run auth + agents all-in-one and print their URLs as one JSON line."""
    import uvloop
    from pydantic import SecretStr

    from kibitz.kit.observability import configure_logging
    from kibitz.kit.settings import PlatformSettings
    from kibitz.runtime.server import run_all_in_one, tune_garbage_collection

    tune_garbage_collection()  # as `kibitz up` does

    async def main() -> None:
        settings = PlatformSettings(
            data_dir=Path(data_dir),
            migrate_on_start=True,
            internal_token=SecretStr("bench-internal-token"),
            log_level="WARNING",
            own_processes=[],  # agents in this process, whose CPU is measured
        )
        configure_logging(level="WARNING", json=True)
        async with run_all_in_one(settings=settings, port=0, modules=["auth", "agents"]) as stack:
            print(json.dumps(stack.urls), flush=True)
            profile_path = os.environ.get("KIBITZ_BENCH_PROFILE")
            profiler = cProfile.Profile()
            if profile_path:  # where the stack spends its CPU, for `python -m pstats`
                profiler.enable()
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            if profile_path:
                profiler.disable()
                profiler.dump_stats(profile_path)

    uvloop.run(main())


# --- measuring ------------------------------------------------------------------------------

Sample = tuple[float, int, float]  # (time to first token s, tokens, whole stream s)


async def run_level(
    concurrency: int, total: int, one: Callable[[], Awaitable[Sample]]
) -> tuple[list[Sample], float]:
    """`total` calls by `concurrency` workers; the samples and the wall time."""
    samples: list[Sample] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            samples.append(await one())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (Linux /proc), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(
    args: argparse.Namespace, sim_url: str, urls: dict[str, str], stack_pid: int
) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as http:
        registered = await http.post(
            f"{urls['auth']}/auth/register",
            json={"email": f"bench-{os.getpid()}@example.com", "password": PASSWORD},
        )
        registered.raise_for_status()
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        created = await http.post(
            f"{urls['agents']}/agents/create",
            json={"name": "Bench", "llm_provider": "openai", "model": "gpt-4o-mini"},
            headers=headers,
        )
        created.raise_for_status()
        agent_id = created.json()["id"]
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{sim_url}/v1", max_retries=0)
        messages = [{"role": "user", "content": "Tell me something."}]

        async def direct() -> Sample:
            started = time.perf_counter()
            first = 0.0
            tokens = 0
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    tokens += 1
                    if tokens == 1:
                        first = time.perf_counter() - started
            return first, tokens, time.perf_counter() - started

        body = {"agent_id": agent_id, "stream": True, "messages": messages}

        async def through_agents() -> Sample:
            started = time.perf_counter()
            first = 0.0
            tokens = 0
            async with http.stream(
                "POST", f"{urls['agents']}/agents/respond", json=body, headers=headers
            ) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line == "event: delta":
                        tokens += 1
                        if tokens == 1:
                            first = time.perf_counter() - started
            return first, tokens, time.perf_counter() - started

        # Warm both paths (connections, JWKS, plan lookups, SDK clients).
        for _ in range(5):
            await direct()
            await through_agents()

        print(
            f"simulator: ttft {args.ttft_ms} ms, {args.tokens} tokens, {args.gap_ms} ms apart; "
            f"{args.requests} streams per level (at least 20 at concurrency 1)"
        )
        print(
            f"{'conc':>4} | {'direct ttft p50/p99 ms':>22} | {'agents ttft p50/p99 ms':>22} | "
            f"{'added p50/p99 ms':>16} | "
            f"{'tok/s direct':>12} | {'tok/s agents':>12} | {'cpu/stream':>10}"
        )
        for level in args.levels:
            # Rounds alternate direct and agents so that a busy machine weighs on both alike.
            total = max(args.requests, 20) if level == 1 else max(args.requests, level * 2)
            rounds = max(1, total // (level * 4))
            direct_samples: list[Sample] = []
            agents_samples: list[Sample] = []
            direct_wall = agents_wall = stack_cpu = 0.0
            for _ in range(rounds):
                samples, wall = await run_level(level, total // rounds, direct)
                direct_samples += samples
                direct_wall += wall
                cpu_before = cpu_seconds(stack_pid)
                samples, wall = await run_level(level, total // rounds, through_agents)
                stack_cpu += cpu_seconds(stack_pid) - cpu_before
                agents_samples += samples
                agents_wall += wall
            d_ttft = [s[0] * 1000 for s in direct_samples]
            a_ttft = [s[0] * 1000 for s in agents_samples]
            d50, d99 = statistics.median(d_ttft), percentile(d_ttft, 0.99)
            a50, a99 = statistics.median(a_ttft), percentile(a_ttft, 0.99)
            d_rate = sum(s[1] for s in direct_samples) / direct_wall
            a_rate = sum(s[1] for s in agents_samples) / agents_wall
            assert all(s[1] == args.tokens for s in agents_samples), "a stream lost tokens"
            print(
                f"{level:>4} | {d50:>10.2f} / {d99:>9.2f} | {a50:>10.2f} / {a99:>9.2f} | "
                f"{a50 - d50:>7.2f} / {a99 - d99:>6.2f} | "
                f"{d_rate:>12.0f} | {a_rate:>12.0f} | "
                f"{stack_cpu * 1000 / len(agents_samples):>10.2f}",
                flush=True,
            )
        await client.close()
        metrics = (await http.get(f"{urls['agents']}/metrics")).text.splitlines()
        failures = [
            line
            for line in metrics
            if line.startswith(("kibitz_llm_retries_total{", "kibitz_llm_errors_total{"))
        ]
        print("retries and errors:", ", ".join(failures) or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64, help="streams per concurrency level")
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sim_port = sock.getsockname()[1]
    sim_url = f"http://127.0.0.1:{sim_port}"
    options = {"--port": sim_port, "--ttft-ms": args.ttft_ms, "--gap-ms": args.gap_ms}
    command = [sys.executable, "-m", "kibitz.simulator", "--tokens", str(args.tokens)]
    for option, value in options.items():
        command += [option, str(value)]
    simulator = subprocess.Popen(command)
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-bench",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": f"{sim_url}/v1",
        }
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
            for _ in range(100):
                try:
                    httpx.get(f"{sim_url}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(bench(args, sim_url, urls, stack.pid))
        finally:
            if stack.stdin is not None:
                stack.stdin.close()
            stack.wait(timeout=20)
            simulator.terminate()
            simulator.wait(timeout=10)


if __name__ == "__main__":
    main()
