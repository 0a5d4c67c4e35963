"""The stack all-in-one behind the LLM simulator, for the benchmarks that stream replies.

The simulator runs in one child process (`python -m kibitz.simulator`) and the whole kibitz stack
in another (gateway, auth, tenants, users, agents, chat; SQLite in a temp dir; in-process bus and
queue), configured as `kibitz up` runs it (agents in a child process of its own). Every `openai`
agent's deployment base URL is the simulator; the plans file raises every plan's limits so a
benchmark measures streaming, not quotas. bench/distributed_stack.py is the distributed shape.

    python bench/simulated_stack.py DATA_DIR   # the stack's child process (prints its URLs)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from distributed_stack import distributed_stack


@dataclass(frozen=True)
class SimulatedStack:
    """Where the simulator and the stack's modules listen, the stack's process ids, and (for
    the distributed stack) what each process runs."""

    sim_url: str
    urls: dict[str, str]
    pids: list[int]
    names: list[str] | None = None


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    """The value at `fraction` (0-1) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (Linux /proc), seconds."""
    proc = Path(f"/proc/{pid}")
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in proc.glob("task/*/children"):
        total += sum(cpu_seconds(int(child)) for child in children.read_text().split())
    return total


def generous_plans(path: Path) -> None:
    """The shipped catalogue with every plan's limits out of the way."""
    shipped = Path(__file__).parents[1] / "src/kibitz/services/tenants/plans.json"
    catalogue = json.loads(shipped.read_text())
    for plan in catalogue["plans"]:
        plan["limits"].update(
            requests_per_minute=1_000_000,
            messages_per_day=1_000_000,
            tokens_per_month=1_000_000_000,
        )
    path.write_text(json.dumps(catalogue))


def serve(data_dir: str) -> None:
    """Run every module all-in-one and print their URLs as one JSON line (the child process);
    ends when its stdin closes."""
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
        )
        configure_logging(level="WARNING", json=True)
        async with run_all_in_one(settings=settings, port=0) as stack:
            print(json.dumps(stack.urls), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    uvloop.run(main())


@contextlib.contextmanager
def simulator(*, ttft_ms: float, gap_ms: float, tokens: int) -> Iterator[str]:
    """The LLM simulator in a child process, healthy: its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz.simulator",
            "--port",
            url.rsplit(":", 1)[1],
            "--ttft-ms",
            str(ttft_ms),
            "--gap-ms",
            str(gap_ms),
            "--tokens",
            str(tokens),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the simulator did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def all_in_one_stack(data_dir: str, env: dict[str, str]) -> Iterator[tuple[dict[str, str], int]]:
    """The stack as `kibitz up` runs it, in a child process: its URLs and process id."""
    stack = subprocess.Popen(
        [sys.executable, __file__, data_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert stack.stdout is not None
        yield json.loads(stack.stdout.readline()), stack.pid
    finally:
        if stack.stdin is not None:
            stack.stdin.close()
        try:
            stack.wait(15)
        except subprocess.TimeoutExpired:
            stack.kill()


@contextlib.contextmanager
def simulated_stack(
    *, ttft_ms: float, gap_ms: float, tokens: int, distributed: bool = False
) -> Iterator[SimulatedStack]:
    """The simulator and the stack behind it (all-in-one, or `distributed`: kibitz serve per
    service, two chat replicas, PostgreSQL, Redis queue/bus/fan-out)."""
    with (
        simulator(ttft_ms=ttft_ms, gap_ms=gap_ms, tokens=tokens) as sim_url,
        tempfile.TemporaryDirectory(prefix="kibitz-bench-") as data_dir,
    ):
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
        if distributed:
            with distributed_stack(env) as running:
                yield SimulatedStack(sim_url, running.urls, running.pids, running.names)
        else:
            with all_in_one_stack(data_dir, env) as (urls, pid):
                yield SimulatedStack(sim_url, urls, [pid])


if __name__ == "__main__":
    serve(sys.argv[1])
