"""Capacity model inputs, measured, and the table they give for 10k, 100k and 1M users.

    flock /tmp/kibitz-cpu.lock .venv/bin/python bench/capacity.py [--replies 60]

Starts the LLM simulator and the whole stack all-in-one as `kibitz up` runs it (agents in a
child process, SQLite in a temp dir, in-process bus), then measures through the gateway:

- CPU per reply: the stack's processes' CPU (main process and agents apart) over streamed
  sends at concurrency 8, at two reply lengths, fitted as fixed cost + cost per token;
- memory per open stream: the main process's resident memory with 300 more `/chat/stream`
  subscriptions open;
- database writes and bytes per message: INSERT/UPDATE/DELETE statements per send, by service,
  and the bytes of the values they write;
- events per message: events handed to the bus per send;
- deltas per reply: the streamed chunks, each one Redis round trip when chat replicas fan out.

Then it prints the model (docs/capacity.md explains the assumptions): peak messages/s, cores
and replicas, memory for open streams, PostgreSQL writes/s, storage and connections, Redis and
NATS load, at 10k, 100k and 1M registered users.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from simulated_stack import cpu_seconds, free_port, generous_plans

PASSWORD = "correct horse battery staple"
CONCURRENCY = 8
SHORT, LONG = 20, 100  # tokens per reply, the two lengths the CPU cost is fitted on
OPEN_STREAMS = 300

# The model's assumptions (docs/capacity.md says why each).
DAILY_ACTIVE_SHARE = 0.20
MESSAGES_PER_ACTIVE_USER = 20
PEAK_TO_AVERAGE = 3.0
TOKENS_PER_REPLY = 300
REPLY_SECONDS = 10.0  # a real model streams ~30 tokens/s
ONLINE_SHARE_AT_PEAK = 0.10  # of daily active users, with a chat open (one stream each)
CPU_UTILISATION_TARGET = 0.6
CORES_PER_REPLICA = 1.0
DB_CONNECTIONS_PER_REPLICA = 10  # kit.db.ConnectionPool: 5 + overflow 5 on PostgreSQL
RETENTION_DAYS = 365
USERS = (10_000, 100_000, 1_000_000)


# --- the stack under test (child process) -------------------------------------------------


def serve(data_dir: str) -> None:
    """Run every module all-in-one, counting database writes; print the URLs, then answer
    each line on stdin with the counters as JSON."""
    import uvloop
    from prometheus_client import REGISTRY
    from pydantic import SecretStr
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from kibitz.kit.observability import configure_logging
    from kibitz.kit.settings import PlatformSettings
    from kibitz.runtime.server import run_all_in_one, tune_garbage_collection

    writes: Counter[str] = Counter()
    written_bytes: Counter[str] = Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def count(
        _c: Any, _cur: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb not in ("INSERT", "UPDATE", "DELETE"):
            return
        service = Path(str(context.engine.url.database)).stem
        rows = parameters if many else [parameters]
        writes[service] += len(rows)
        for row in rows:
            values = row.values() if isinstance(row, dict) else row or ()
            written_bytes[service] += sum(len(str(value)) for value in values if value is not None)

    def counters() -> dict[str, Any]:
        published = sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "kibitz_events_published"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
        return {"writes": writes, "bytes": written_bytes, "events": published}

    tune_garbage_collection()

    async def main() -> None:
        settings = PlatformSettings(
            data_dir=Path(data_dir),
            migrate_on_start=True,
            internal_token=SecretStr("bench-internal-token"),
            log_level="WARNING",
        )
        configure_logging(level="WARNING", json=True)
        async with run_all_in_one(settings=settings, port=0) as stack:
            agents = stack.children[0].pid if stack.children else None
            print(json.dumps({"urls": stack.urls, "agents_pid": agents}), flush=True)
            loop = asyncio.get_running_loop()
            while await loop.run_in_executor(None, sys.stdin.readline):
                print(json.dumps(counters()), flush=True)

    uvloop.run(main())


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- measuring ------------------------------------------------------------------------------


class Stack:
    """The child process and a way to read its counters."""

    def __init__(self, process: subprocess.Popen[str], urls: dict[str, str], agents_pid: int):
        self.process = process
        self.urls = urls
        self.agents_pid = agents_pid

    def counters(self) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))


async def measure(stack: Stack, replies: int) -> dict[str, Any]:
    gateway = stack.urls["gateway"]
    limits = httpx.Limits(max_connections=OPEN_STREAMS + 50, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=120, limits=limits, trust_env=False) as http:
        users = []
        for _ in range(CONCURRENCY):
            email = f"cap-{uuid.uuid4().hex[:12]}@example.com"
            registered = await http.post(
                f"{gateway}/auth/register", json={"email": email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            agent = await http.post(
                f"{gateway}/agents/create",
                json={"name": "Cap", "llm_provider": "openai", "model": "gpt-4o-mini"},
                headers=headers,
            )
            first = await http.post(
                f"{gateway}/chat/send",
                json={"content": "hello", "agent_id": agent.json()["id"]},
                headers=headers,
            )
            users.append({"headers": headers, "chat_id": first.json()["chat_id"]})

        deltas: list[int] = []

        async def send(user: dict[str, Any], tokens: int) -> None:
            body = {
                "content": f"Tell me something. [sim:tokens={tokens}]",
                "chat_id": user["chat_id"],
            }
            headers = {**user["headers"], "Accept": "text/event-stream"}
            count = 0
            async with http.stream("POST", f"{gateway}/chat/send", json=body, headers=headers) as r:
                assert r.status_code == 201, await r.aread()
                async for line in r.aiter_lines():
                    count += line == "event: message.delta"
            deltas.append(count)

        async def round_of(tokens: int, total: int) -> None:
            per_user = max(1, total // CONCURRENCY)

            async def loop(user: dict[str, Any]) -> None:
                for _ in range(per_user):
                    await send(user, tokens)

            await asyncio.gather(*(loop(user) for user in users))

        await round_of(SHORT, CONCURRENCY * 3)  # warm caches and connections
        cpu: dict[int, tuple[float, float]] = {}
        before_counts = stack.counters()
        sent = 0
        for tokens in (SHORT, LONG):
            deltas.clear()
            main_before = own_cpu_seconds(stack.process.pid)
            agents_before = cpu_seconds(stack.agents_pid)
            await round_of(tokens, replies)
            done = len(deltas)
            sent += done
            cpu[tokens] = (
                (own_cpu_seconds(stack.process.pid) - main_before) / done,
                (cpu_seconds(stack.agents_pid) - agents_before) / done,
            )
            if tokens == LONG:
                deltas_per_long_reply = sum(deltas) / done
        after_counts = stack.counters()

        # Memory per open stream: subscribers to chats' live events, held open.
        await asyncio.sleep(0.5)
        rss_before = rss_kib(stack.process.pid)
        release, all_open = asyncio.Event(), asyncio.Event()
        held = 0

        async def hold(user: dict[str, Any]) -> None:
            nonlocal held
            async with http.stream(
                "GET", f"{gateway}/chat/stream/{user['chat_id']}", headers=user["headers"]
            ) as response:
                assert response.status_code == 200
                held += 1
                if held == OPEN_STREAMS:
                    all_open.set()
                await release.wait()

        holders = [asyncio.create_task(hold(users[i % len(users)])) for i in range(OPEN_STREAMS)]
        await asyncio.wait_for(all_open.wait(), 60)
        await asyncio.sleep(1.0)  # the server's side of each settles
        rss_open = rss_kib(stack.process.pid)
        release.set()
        await asyncio.gather(*holders, return_exceptions=True)

    writes = Counter(after_counts["writes"]) - Counter(before_counts["writes"])
    written = Counter(after_counts["bytes"]) - Counter(before_counts["bytes"])
    return {
        "cpu": cpu,
        "sent": sent,
        "writes_per_message": {k: v / sent for k, v in sorted(writes.items())},
        "bytes_per_message": {k: v / sent for k, v in sorted(written.items())},
        "events_per_message": (after_counts["events"] - before_counts["events"]) / sent,
        "deltas_per_reply": deltas_per_long_reply / LONG,  # per token of reply
        "kib_per_stream": (rss_open - rss_before) / OPEN_STREAMS,
        "held": held,
    }


def print_inputs(m: dict[str, Any]) -> tuple[float, float]:
    (short_main, short_agents), (long_main, long_agents) = m["cpu"][SHORT], m["cpu"][LONG]
    per_token = (long_main + long_agents - short_main - short_agents) / (LONG - SHORT)
    fixed = short_main + short_agents - per_token * SHORT
    print("measured (all-in-one, SQLite, 2 shared cores; simulator 50 ms TTFT, 2 ms per token):")
    for tokens in (SHORT, LONG):
        main_ms, agents_ms = (value * 1000 for value in m["cpu"][tokens])
        print(
            f"  CPU per reply, {tokens:>3} tokens: {main_ms + agents_ms:6.1f} ms "
            f"(gateway+chat+others {main_ms:.1f}, agents {agents_ms:.1f})"
        )
    print(f"  fitted: {fixed * 1000:.1f} ms per reply + {per_token * 1000:.3f} ms per token")
    print(f"  memory per open stream: {m['kib_per_stream']:.1f} KiB ({m['held']} streams held)")
    writes = ", ".join(f"{k} {v:.1f}" for k, v in m["writes_per_message"].items())
    print(f"  database writes per message: {sum(m['writes_per_message'].values()):.1f} ({writes})")
    written = ", ".join(f"{k} {v:.0f}" for k, v in m["bytes_per_message"].items())
    print(f"  bytes written per message: {sum(m['bytes_per_message'].values()):.0f} ({written})")
    print(f"  events per message: {m['events_per_message']:.2f}")
    print(f"  streamed deltas per token of reply: {m['deltas_per_reply']:.2f}")
    return fixed, per_token


def print_model(m: dict[str, Any], fixed: float, per_token: float) -> None:
    cpu_per_reply = fixed + per_token * TOKENS_PER_REPLY
    writes = sum(m["writes_per_message"].values())
    bytes_per_message = sum(m["bytes_per_message"].values())
    print(
        f"\nmodel: {DAILY_ACTIVE_SHARE:.0%} daily active, {MESSAGES_PER_ACTIVE_USER} messages "
        f"each, peak {PEAK_TO_AVERAGE:.0f}x average, {TOKENS_PER_REPLY}-token replies over "
        f"{REPLY_SECONDS:.0f} s, {ONLINE_SHARE_AT_PEAK:.0%} of the day's users online at peak; "
        f"CPU {cpu_per_reply * 1000:.1f} ms per reply, {CPU_UTILISATION_TARGET:.0%} target"
    )
    header = (
        f"{'users':>9} | {'peak msg/s':>10} | {'cores':>5} | {'replicas':>8} | "
        f"{'streams':>7} | {'stream MiB':>10} | {'PG writes/s':>11} | {'PG GiB/yr':>9} | "
        f"{'PG conns':>8} | {'Redis trips/s':>13} | {'NATS ev/s':>9}"
    )
    print(header)
    for users in USERS:
        daily = users * DAILY_ACTIVE_SHARE * MESSAGES_PER_ACTIVE_USER
        peak = daily / 86_400 * PEAK_TO_AVERAGE
        cores = peak * cpu_per_reply / CPU_UTILISATION_TARGET
        replicas = max(2, math.ceil(cores / CORES_PER_REPLICA))
        streams = peak * REPLY_SECONDS + users * DAILY_ACTIVE_SHARE * ONLINE_SHARE_AT_PEAK
        stream_mib = streams * m["kib_per_stream"] / 1024
        pg_writes = peak * writes
        pg_gib = daily * RETENTION_DAYS * bytes_per_message * 2 / 2**30  # x2: indexes, overhead
        # At most, if every pool filled: the autoscaled pods (gateway's hold none, but the split
        # between gateway, chat and agents is not measured apart) and 2 each of the other three.
        connections = (replicas + 3 * 2) * DB_CONNECTIONS_PER_REPLICA
        redis = peak * (TOKENS_PER_REPLY * m["deltas_per_reply"] + 2)
        nats = peak * m["events_per_message"]
        print(
            f"{users:>9,} | {peak:>10.1f} | {cores:>5.1f} | {replicas:>8} | {streams:>7.0f} | "
            f"{stream_mib:>10.0f} | {pg_writes:>11.0f} | {pg_gib:>9.0f} | {connections:>8} | "
            f"{redis:>13.0f} | {nats:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--replies", type=int, default=64, help="sends per reply length")
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    sim_port = free_port()
    simulator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibitz.simulator",
            "--port",
            str(sim_port),
            "--ttft-ms",
            "50",
            "--gap-ms",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as data_dir:
        plans = Path(data_dir) / "plans.json"
        generous_plans(plans)
        env = {
            **os.environ,
            "KIBITZ_AGENTS_OPENAI_API_KEY": "sk-bench",
            "KIBITZ_AGENTS_OPENAI_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "KIBITZ_TENANTS_PLANS_FILE": str(plans),
            "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000000",
            "KIBITZ_LOG_LEVEL": "WARNING",
        }
        env.pop("KIBITZ_REDIS_URL", None)
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout
            started = json.loads(process.stdout.readline())
            stack = Stack(process, started["urls"], started["agents_pid"])
            measured = asyncio.run(measure(stack, args.replies))
            fixed, per_token = print_inputs(measured)
            print_model(measured, fixed, per_token)
        finally:
            process.terminate()
            process.wait(timeout=30)
            simulator.terminate()
            simulator.wait(timeout=10)


if __name__ == "__main__":
    main()
