"""The stack in distributed mode for the benchmarks: `kibitz serve` per service as real processes
(two chat replicas behind the gateway), PostgreSQL databases, Redis Streams for the job queue and
the event bus, Redis pub/sub for chat's fan-out: deploy/compose.yaml's shape on this machine.

PostgreSQL and Redis are the ones the tests use (`KIBITZ_TEST_POSTGRES_DSN`, default
postgresql://postgres@127.0.0.1:5432/postgres; `KIBITZ_BENCH_REDIS_URL`, default
redis://127.0.0.1:6379/0); each run makes its own databases and key prefix and removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet

KIBITZ = str(Path(sys.executable).parent / "kibitz")
SERVICES = ("auth", "tenants", "users", "agents", "chat")


@dataclass
class DistributedStack:
    """Where the processes listen, and their ids (their CPU is the stack's)."""

    urls: dict[str, str]
    pids: list[int]
    # Each process's service, in the order of `pids`.
    names: list[str]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _databases(admin_dsn: str, names: list[str], *, create: bool) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_dsn)
    try:
        for name in names:
            if create:
                await admin.execute(f'CREATE DATABASE "{name}"')
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _forget_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}*", f"*{prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become healthy")


@contextlib.contextmanager
def distributed_stack(env: dict[str, str], *, chat_replicas: int = 2) -> Iterator[DistributedStack]:
    """Migrate fresh databases, start every service (chat `chat_replicas` times) and the gateway,
    and stop them afterwards."""
    admin_dsn = os.environ.get(
        "KIBITZ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("KIBITZ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    server = urlsplit(admin_dsn)
    run = uuid.uuid4().hex[:8]
    prefix = f"bench{run}"
    databases = {service: f"kibitz_bench_{run}_{service}" for service in SERVICES}
    ports = {name: _free_port() for name in SERVICES}
    chat_ports = [ports["chat"]] + [_free_port() for _ in range(chat_replicas - 1)]
    gateway_port = _free_port()
    user = server.username or "postgres"
    password = f":{server.password}" if server.password else ""
    host = f"{server.hostname or '127.0.0.1'}:{server.port or 5432}"
    values = {
        **os.environ,
        **env,
        "KIBITZ_INTERNAL_TOKEN": secrets.token_urlsafe(32),
        # Every agents (auth) replica must share it: kibitz serve refuses to start without.
        "KIBITZ_AGENTS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "KIBITZ_AUTH_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "KIBITZ_BUS_URL": f"{redis_url}?prefix={prefix}",
        "KIBITZ_QUEUE_URL": f"{redis_url}?prefix={prefix}",
        "KIBITZ_REDIS_URL": redis_url,
        **{
            f"KIBITZ_{service.upper()}_DATABASE_URL": (
                f"postgresql+asyncpg://{user}{password}@{host}/{database}"
            )
            for service, database in databases.items()
        },
        **{
            f"KIBITZ_{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()
        },
        "KIBITZ_CHAT_URL": ",".join(f"http://127.0.0.1:{port}" for port in chat_ports),
    }
    asyncio.run(_databases(admin_dsn, list(databases.values()), create=True))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kibitz-distributed-bench-") as logs:
            values["KIBITZ_DATA_DIR"] = str(Path(logs) / "data")
            migrated = subprocess.run([KIBITZ, "migrate"], env=values, capture_output=True)
            if migrated.returncode != 0:
                raise SystemExit(migrated.stderr.decode()[-2000:])
            listening = [(name, ports[name]) for name in SERVICES if name != "chat"]
            listening += [("chat", port) for port in chat_ports] + [("gateway", gateway_port)]
            started = []
            for index, (name, port) in enumerate(listening):
                log = Path(logs) / f"{name}-{index}.log"
                process = subprocess.Popen(
                    [KIBITZ, "serve", name, "--host", "127.0.0.1", "--port", str(port)],
                    env=values,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
                processes.append(process)
                started.append((f"http://127.0.0.1:{port}", process, log))
            for url, process, log in started:
                _wait_healthy(url, process, log)
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            urls["gateway"] = f"http://127.0.0.1:{gateway_port}"
            yield DistributedStack(
                urls=urls,
                pids=[process.pid for process in processes],
                names=[name for name, _ in listening],
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        asyncio.run(_databases(admin_dsn, list(databases.values()), create=False))
        with contextlib.suppress(Exception):
            _forget_redis_keys(redis_url, prefix)
