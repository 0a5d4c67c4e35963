"""The gateway in front of the real auth service: in one process, and over two auth processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from kibitz.kit.jwt import SigningKey
from tests.fixtures.stack import DEFAULT_PASSWORD, start_stack
from tests.gateway.conftest import start_gateway
from tests.gateway.test_pipeline import ATTACKS

REPO = Path(__file__).resolve().parents[2]


async def test_register_login_and_me_through_the_gateway(tmp_path: Path, database: str) -> None:
    async with start_stack(["auth", "gateway"], data_dir=tmp_path, database=database) as stack:
        account = await stack.register()
        me = await stack.http.get(f"{stack.entry}/auth/me", headers=account.headers)
        assert me.status_code == 200
        assert me.json()["email"] == account.email
        # A read: counted against the per-user read limit, not the plan's.
        assert me.headers["ratelimit-limit"] == "600"
        login = await stack.http.post(
            f"{stack.entry}/auth/login", json={"email": account.email, "password": DEFAULT_PASSWORD}
        )
        assert login.status_code == 200
        missing = await stack.http.get(f"{stack.entry}/auth/me")
        assert missing.status_code == 401


async def test_forged_tokens_are_refused_at_the_gateway_with_the_real_jwks(tmp_path: Path) -> None:
    async with start_stack(["auth", "gateway"], data_dir=tmp_path) as stack:
        await stack.register()
        jwks = (await stack.http.get(f"{stack.entry}/auth/jwks")).json()
        real_kid = jwks["keys"][0]["kid"]
        # Attacks that need the private key use a stand-in key carrying the real kid.
        stand_in = SigningKey.generate()
        stand_in.kid = real_kid
        for name, forge in ATTACKS.items():
            token = forge(stand_in)
            response = await stack.http.get(
                f"{stack.entry}/auth/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, name
            assert response.headers["content-type"] == "application/problem+json"


async def test_the_reference_page_renders_the_auth_services_document(tmp_path: Path) -> None:
    async with start_stack(["auth", "gateway"], data_dir=tmp_path) as stack:
        page = (await stack.http.get(f"{stack.entry}/docs")).text
        assert "/auth/register" in page and "/auth/me" in page
        document = (await stack.http.get(f"{stack.entry}/auth/openapi.json")).json()
        assert "/auth/login" in document["paths"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _auth_processes(
    data_dir: Path, count: int
) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    env = {
        **os.environ,
        "KIBITZ_DATA_DIR": str(data_dir),
        "KIBITZ_INTERNAL_TOKEN": "shared-internal-token",
        # Run apart, every auth replica needs the same key (`serve auth` refuses to start without).
        "KIBITZ_AUTH_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "KIBITZ_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "kibitz", "migrate", "auth"], cwd=REPO, env=env, check=True
    )
    processes = []
    try:
        for _ in range(count):
            port = _free_port()
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kibitz",
                    "serve",
                    "auth",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                cwd=REPO,
                env=env,
                stderr=subprocess.DEVNULL,
            )
            processes.append((process, f"http://127.0.0.1:{port}"))
        for process, url in processes:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, "auth did not start"
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "auth did not start in time"
                time.sleep(0.1)
        yield processes
    finally:
        for process, _ in processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in processes:
            process.wait(timeout=15)


@pytest.mark.slow
async def test_two_auth_processes_share_the_load_and_one_dying_loses_nothing(
    tmp_path: Path,
) -> None:
    with _auth_processes(tmp_path, 2) as replicas:
        urls = [url for _, url in replicas]
        async with (
            start_gateway(
                service_urls={"auth": urls},
                env={
                    "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000",
                    "KIBITZ_WEB_DIST": str(tmp_path),
                },
            ) as (gateway, _, _p),
            httpx.AsyncClient(base_url=gateway, timeout=30, trust_env=False) as http,
        ):
            registered = await http.post(
                "/auth/register", json={"email": "lb@example.com", "password": DEFAULT_PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            direct = [
                (await http.get(f"{url}/auth/me", headers=headers)).status_code for url in urls
            ]
            assert direct == [200, 200]
            answers = await asyncio.gather(
                *(http.get("/auth/me", headers=headers) for _ in range(8))
            )
            assert {response.status_code for response in answers} == {200}

            replicas[0][0].send_signal(signal.SIGKILL)
            replicas[0][0].wait(timeout=10)
            statuses = [(await http.get("/auth/me", headers=headers)).status_code for _ in range(6)]
            login = await http.post(
                "/auth/login", json={"email": "lb@example.com", "password": DEFAULT_PASSWORD}
            )
            assert statuses == [200] * 6
            assert login.status_code == 200
