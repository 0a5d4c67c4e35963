"""Issue 15's auth findings, black-box against a running `kibitz up`: login throttling slows
the guesser and not the owner, no local caller picks its own address, and an access token dies
with its session at logout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import free_port, wait_healthy

PASSWORD = "correct horse battery staple"


@dataclass
class RunningKibitz:
    """`kibitz up` as a user runs it, and where its modules listen."""

    process: subprocess.Popen[bytes]
    base: str

    def loopback_ports(self) -> list[int]:
        """Every TCP port the process (or its children) listens on (from /proc)."""
        pids = [self.process.pid] + [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _parent_of(int(entry.name)) == self.process.pid
        ]
        inodes = set()
        for pid in pids:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports = []
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
        return ports


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.fixture(scope="module")
def kibitz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKibitz]:
    """One `kibitz up` for the module, behind a (pretend) load balancer: the gateway believes
    X-Forwarded-For, so each test may speak from addresses of its choosing."""
    data = tmp_path_factory.mktemp("kibitz")
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(data / "data"),
        "KIBITZ_LOG_LEVEL": "WARNING",
        "KIBITZ_GATEWAY_TRUST_FORWARDED_FOR": "true",
        "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", "up", "--port", str(port)],
        cwd=data,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, timeout=90)
        yield RunningKibitz(process, base)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _register(kibitz: RunningKibitz) -> dict[str, str]:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    answer = httpx.post(
        f"{kibitz.base}/auth/register", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return {"email": email, **answer.json()}


def _login(base: str, email: str, password: str, *, address: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.post(
        f"{base}/auth/login",
        json={"email": email, "password": password},
        headers=headers,
        timeout=30,
    )


@pytest.mark.slow
def test_a_guesser_is_slowed_and_the_owner_still_signs_in(kibitz: RunningKibitz) -> None:
    victim = _register(kibitz)
    for _ in range(5):
        wrong = _login(kibitz.base, victim["email"], "not the password", address="203.0.113.9")
        assert wrong.status_code == 401
    slowed = _login(kibitz.base, victim["email"], "not the password", address="203.0.113.9")
    assert slowed.status_code == 429
    assert 1 <= int(slowed.headers["retry-after"]) <= 2  # a delay, not a 15-minute lock
    owner = _login(kibitz.base, victim["email"], PASSWORD, address="198.51.100.7")
    assert owner.status_code == 200, owner.text


@pytest.mark.slow
def test_a_local_caller_on_auth_s_port_cannot_rotate_its_address(kibitz: RunningKibitz) -> None:
    auth = next(
        f"http://127.0.0.1:{port}"
        for port in kibitz.loopback_ports()
        if f":{port}" not in kibitz.base and _answers_jwks(f"http://127.0.0.1:{port}")
    )
    statuses = [
        _login(
            auth, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "guess", address=f"10.9.0.{n}"
        ).status_code
        for n in range(25)
    ]
    # Every guess counts against the caller's real address, loopback: 20 free, then slowed.
    assert statuses[:20] == [401] * 20
    assert 429 in statuses[20:]


def _answers_jwks(base: str) -> bool:
    try:
        answer = httpx.get(f"{base}/auth/jwks", timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and "keys" in answer.text


@pytest.mark.slow
def test_an_access_token_dies_with_its_session_at_logout(kibitz: RunningKibitz) -> None:
    account = _register(kibitz)
    headers = {"Authorization": f"Bearer {account['access_token']}"}
    # Served by auth, users, chat (in the parent) and agents (in a child process of its own).
    paths = ["/auth/me", "/users/me", "/chat/chats", "/agents/my", "/tenants/plan"]
    for path in paths:
        answer = httpx.get(f"{kibitz.base}{path}", headers=headers, timeout=10)
        assert answer.status_code == 200, (path, answer.text)
    logout = httpx.post(
        f"{kibitz.base}/auth/logout", json={"refresh_token": account["refresh_token"]}, timeout=10
    )
    assert logout.status_code == 204
    # Not 15 minutes later: now in the parent's services, which hear the event...
    statuses = {
        path: httpx.get(f"{kibitz.base}{path}", headers=headers, timeout=10).status_code
        for path in paths
    }
    assert {path: status for path, status in statuses.items() if path != "/agents/my"} == {
        path: 401 for path in paths if path != "/agents/my"
    }
    # ...and within a second or two in agents' child process, which asks auth every second.
    deadline = time.monotonic() + 3
    while _answers(f"{kibitz.base}/agents/my", headers) != 401 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _answers(f"{kibitz.base}/agents/my", headers) == 401
    # Straight to the agents child too, past the gateway: it learns within a second or two.
    agents = [
        f"http://127.0.0.1:{port}"
        for port in kibitz.loopback_ports()
        if f":{port}" not in kibitz.base
        and _answers(f"http://127.0.0.1:{port}/agents/openapi.json", {}) == 200
    ]
    assert agents
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if {_answers(f"{url}/agents/my", headers) for url in agents} == {401}:
            break
        time.sleep(0.1)
    assert {_answers(f"{url}/agents/my", headers) for url in agents} == {401}


def _answers(url: str, headers: dict[str, str]) -> int | None:
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return None
