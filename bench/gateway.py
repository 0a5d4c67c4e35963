"""Gateway overhead: the same authenticated GET straight to auth and through the gateway.

    .venv/bin/python bench/gateway.py [--seconds 6] [--rounds 3]

Starts kibitz all-in-one (auth + gateway, SQLite in a temp dir) in a child process, registers a
user, then measures `GET /auth/me` directly against the auth service and through the gateway at
concurrency 1 and 32 with a minimal keep-alive HTTP/1.1 client (so the client costs little), and
`/healthz` latency on the gateway while 20 logins hash passwords at once.

Direct and gateway runs alternate in rounds so that other work on the machine hits both alike;
the stack process's CPU time per request is printed too, as it is the figure least disturbed by
other work on the machine.

Targets (issue 2): the gateway adds <= 1 ms at p50 at c=1 and keeps >= 0.5x the direct requests/s
at c=32; `/healthz` p99 <= 20 ms during the logins.
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
from pathlib import Path
from urllib.parse import urlsplit

import httpx

PASSWORD = "correct horse battery staple"
WARM_UP_REQUESTS = 20


# --- the stack under test (child process) -------------------------------------------------


def serve(data_dir: str) -> None:
    """Run auth + gateway all-in-one, print their URLs, then answer CPU-time questions."""
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
        async with run_all_in_one(settings=settings, port=0, modules=["auth", "gateway"]) as stack:
            print(json.dumps(stack.urls), flush=True)
            loop = asyncio.get_running_loop()
            # Each line asks for this process's CPU time; end of input stops the stack.
            while await loop.run_in_executor(None, sys.stdin.readline):
                print(time.process_time(), flush=True)

    uvloop.run(main())


class ServerClock:
    """Asks the stack process for its CPU time."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.child = child

    def cpu_seconds(self) -> float:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("cpu\n")
        self.child.stdin.flush()
        return float(self.child.stdout.readline())


# --- a small keep-alive HTTP/1.1 client -----------------------------------------------------


class Connection:
    """One keep-alive connection sending the same request over and over."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base_url: str) -> Connection:
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def raw_request(method: str, base_url: str, path: str, headers: dict[str, str]) -> bytes:
    """The bytes of one HTTP/1.1 request."""
    host = urlsplit(base_url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def load(
    base_url: str, request: bytes, *, concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    """Send `request` from `concurrency` connections for `seconds`: latencies, errors, wall."""
    connections = [await Connection.open(base_url) for _ in range(concurrency)]
    for connection in connections:
        for _ in range(WARM_UP_REQUESTS):
            await connection.send(request)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    wall = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return latencies, errors, wall


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def healthz_during_logins(
    gateway: str, email: str, *, logins: int = 20
) -> tuple[list[float], float]:
    """/healthz latencies sampled while `logins` logins run at once, and the logins' wall time."""
    request = raw_request("GET", gateway, "/healthz", {})
    connection = await Connection.open(gateway)
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=gateway, timeout=60, trust_env=False) as http:
        started = time.perf_counter()
        body = {"email": email, "password": PASSWORD}
        tasks = [asyncio.create_task(http.post("/auth/login", json=body)) for _ in range(logins)]
        while not all(task.done() for task in tasks):
            sent = time.perf_counter()
            await connection.send(request)
            samples.append(time.perf_counter() - sent)
            await asyncio.sleep(0.002)
        wall = time.perf_counter() - started
        statuses = [task.result().status_code for task in tasks]
    connection.close()
    assert statuses == [200] * logins, statuses
    return samples, wall


async def run(urls: dict[str, str], seconds: float, rounds: int, clock: ServerClock) -> None:
    """Every measurement, printed as a table and the ratios the targets are stated in."""
    targets = {"direct": urls["auth"], "gateway": urls["gateway"]}
    email = f"bench-{time.time_ns()}@example.com"
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        registered = await http.post(
            f"{targets['gateway']}/auth/register", json={"email": email, "password": PASSWORD}
        )
        registered.raise_for_status()
        token = registered.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    print(
        f"GET /auth/me, {seconds:.0f} s per target and concurrency in {rounds} alternating rounds"
        " (all-in-one: auth and gateway share one process)\n"
    )
    print(
        f"{'target':<8} {'conc':>4} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'CPU/req us':>10} {'errors':>6}"
    )
    results: dict[tuple[str, int], tuple[float, float, float]] = {}
    for concurrency in (1, 32):
        samples: dict[str, list[float]] = {name: [] for name in targets}
        walls = dict.fromkeys(targets, 0.0)
        cpu = dict.fromkeys(targets, 0.0)
        sent = dict.fromkeys(targets, 0)
        errors = dict.fromkeys(targets, 0)
        for _ in range(rounds):
            for name, base in targets.items():
                request = raw_request("GET", base, "/auth/me", headers)
                before = clock.cpu_seconds()
                latencies, failed, wall = await load(
                    base, request, concurrency=concurrency, seconds=seconds / rounds
                )
                cpu[name] += clock.cpu_seconds() - before
                sent[name] += len(latencies) + WARM_UP_REQUESTS * concurrency
                samples[name] += latencies
                walls[name] += wall
                errors[name] += failed
        for name in targets:
            latencies = samples[name]
            rate = len(latencies) / walls[name]
            p50 = percentile(latencies, 0.5) * 1000
            p99 = percentile(latencies, 0.99) * 1000
            cpu_us = cpu[name] / sent[name] * 1e6
            results[(name, concurrency)] = (rate, p50, cpu_us)
            print(
                f"{name:<8} {concurrency:>4} {len(latencies):>8} {rate:>7.0f} {p50:>7.2f} "
                f"{p99:>8.2f} {cpu_us:>10.0f} {errors[name]:>6}"
            )
    added = results[("gateway", 1)][1] - results[("direct", 1)][1]
    ratio = results[("gateway", 32)][0] / results[("direct", 32)][0]
    p50_ratio = results[("gateway", 32)][1] / results[("direct", 32)][1]
    one, many = (results[("gateway", c)][2] - results[("direct", c)][2] for c in (1, 32))
    print()
    print(f"c=1  p50 added by the gateway:   {added:6.2f} ms  (target <= 1 ms)")
    print(f"c=32 req/s gateway/direct:       {ratio:6.2f}     (target >= 0.5)")
    print(f"c=32 p50 gateway/direct:         {p50_ratio:6.2f}")
    print(f"CPU the gateway adds per request: {one:.0f} us (c=1), {many:.0f} us (c=32)")

    healthz, wall = await healthz_during_logins(targets["gateway"], email)
    print()
    print(
        f"/healthz during 20 concurrent logins ({wall:.2f} s, {len(healthz)} samples): "
        f"p50 {statistics.median(healthz) * 1000:.2f} ms, "
        f"p99 {percentile(healthz, 0.99) * 1000:.2f} ms, max {max(healthz) * 1000:.2f} ms"
        "  (target p99 <= 20 ms)"
    )


def main() -> None:
    """Start the stack in a child process and measure it from this one."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="load time per target and concurrency"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating direct/gateway rounds")
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            # The bench measures proxying, not limiting: limits far above what it sends.
            "KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "1000000",
            "KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": "1000000",
            "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000",
        }
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:
            assert child.stdout is not None
            urls = json.loads(child.stdout.readline())
            asyncio.run(run(urls, args.seconds, args.rounds, ServerClock(child)))
        finally:
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=30)


if __name__ == "__main__":
    main()
