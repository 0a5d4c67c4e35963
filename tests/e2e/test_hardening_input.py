"""Issue 15's input findings, black-box against a running `kibitz up`: body limits (and the
memory they keep), content types, strict input, and the SSRF guard's IPv6 forms."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import free_port, wait_healthy

pytestmark = pytest.mark.slow

MB = 1_000_000


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]

    def rss_bytes(self) -> int:
        """The resident memory of the `kibitz up` process (the gateway and auth live there)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def kibitz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("hardening-input")
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KIBITZ_")},
        "KIBITZ_DATA_DIR": str(root / "data"),
        "KIBITZ_LOG_LEVEL": "WARNING",
        "KIBITZ_WEB_DIST": str(root / "no-web-build"),
        # Registration and login are limited per IP; this module registers a few users.
        "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "1000",
    }
    log = (root / "kibitz.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "kibitz", "up", "--host", "127.0.0.1", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout=90)
        yield Running(url=url, process=process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def http(kibitz: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=kibitz.url, timeout=120) as client:
        yield client


async def _register(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post(
        "/auth/register",
        json={"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "a long passphrase"},
    )
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _zeros(total: int) -> AsyncIterator[bytes]:
    piece = b"0" * 1_000_000
    for _ in range(total // len(piece)):
        yield piece


async def test_large_bodies_are_refused_with_413_and_memory_comes_back(
    kibitz: Running, http: httpx.AsyncClient
) -> None:
    await _register(http)  # everything that a first request loads is loaded
    before = kibitz.rss_bytes()

    async def declared() -> httpx.Response:
        return await http.post(
            "/auth/register",
            content=_zeros(100 * MB),
            headers={"Content-Type": "application/json", "Content-Length": str(100 * MB)},
        )

    async def chunked() -> httpx.Response:
        return await http.post(
            "/auth/register", content=_zeros(100 * MB), headers={"Content-Type": "application/json"}
        )

    answers = await asyncio.gather(*(declared() for _ in range(4)), *(chunked() for _ in range(4)))
    after = kibitz.rss_bytes()
    # 800 MB were sent; none of it was kept (without the limits: +1.1 GB, and it stayed).
    grew = after - before
    print(f"RSS before {before / MB:.0f} MB, after {after / MB:.0f} MB (+{grew / MB:.1f} MB)")
    assert grew < 50 * MB
    for answer in answers:
        assert answer.status_code == 413, answer.text[:200]
        assert answer.headers["content-type"] == "application/problem+json"


async def test_every_kind_of_route_refuses_a_body_over_its_limit(http: httpx.AsyncClient) -> None:
    auth = await _register(http)
    json_type = {"Content-Type": "application/json"}
    over_the_gateway = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    over_the_route = b'{"name": "' + b"x" * (64 * 1024) + b'"}'
    for method, path, body in [
        ("POST", "/auth/login", over_the_gateway),
        ("POST", "/agents/create", over_the_route),
        ("PATCH", "/users/me", b'{"full_name": "' + b"x" * (16 * 1024) + b'"}'),
        ("POST", "/chat/send", b'{"content": "' + b"x" * (1024 * 1024) + b'"}'),
        ("POST", "/knowledge/collections", over_the_route),
        ("POST", "/tenants/invites", over_the_route),
    ]:
        answer = await http.request(method, path, content=body, headers={**auth, **json_type})
        assert answer.status_code == 413, (path, answer.text[:200])
        assert "at most" in answer.json()["detail"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_json_body_must_be_sent_as_json(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    auth = await _register(http)
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    for method, path, body in [
        ("POST", "/auth/login", b'{"email": "a@example.com", "password": "whatever1"}'),
        ("POST", "/agents/create", b'{"name": "A", "llm_provider": "echo", "model": "echo"}'),
        ("PATCH", "/users/me", b'{"full_name": "Ada"}'),
        ("POST", "/chat/send", b'{"content": "hi", "agent_id": "%s"}' % uuid.uuid4().hex.encode()),
        ("POST", "/v1/chat/completions", b'{"model": "x", "messages": []}'),
    ]:
        answer = await http.request(method, path, content=body, headers=headers)
        assert answer.status_code == 415, (path, answer.status_code, answer.text[:200])


async def test_control_characters_and_loose_numbers_are_refused(http: httpx.AsyncClient) -> None:
    auth = await _register(http)
    agent = {"name": "Helper", "llm_provider": "echo", "model": "echo"}
    for change in [
        {"name": "Hel\x00per"},
        {"name": "two\nlines"},
        {"instructions": "ring \x07 the bell"},
        {"temperature": "0.5"},
        {"temperature": True},
    ]:
        answer = await http.post("/agents/create", json={**agent, **change}, headers=auth)
        assert answer.status_code == 422, (change, answer.text[:200])
    created = await http.post(
        "/agents/create",
        json={**agent, "instructions": "Be brief.\n\tAlways.", "temperature": 1},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    for change in [
        {"content": "hello\x00"},
        {"content": "hi", "title": "tab\tin title"},
    ]:
        answer = await http.post("/chat/send", json={"agent_id": agent_id, **change}, headers=auth)
        assert answer.status_code == 422, (change, answer.text[:200])
    sent = await http.post(
        "/chat/send", json={"agent_id": agent_id, "content": "two\nlines\tand a tab"}, headers=auth
    )
    assert sent.status_code == 201, sent.text
    for path, body in [
        ("/knowledge/collections", {"name": "docs\x1b[2J"}),
        ("/users/me", {"full_name": "Ada\x00"}),
    ]:
        method = "PATCH" if path == "/users/me" else "POST"
        answer = await http.request(method, path, json=body, headers=auth)
        assert answer.status_code in (403, 422), (path, answer.text[:200])
        if path == "/users/me":
            assert answer.status_code == 422


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::a9fe:a9fe]",
        "[::169.254.169.254]",
        "[::ffff:0:a9fe:a9fe]",
        "[64:ff9b::7f00:1]",
        "[::127.0.0.1]",
        "[fec0::1]",
        "[::ffff:127.0.0.1]",
        "[2002:a9fe:a9fe::1]",
        "127.0.0.1",
    ],
)
async def test_a_custom_agent_cannot_point_at_a_private_address_in_any_form(
    http: httpx.AsyncClient, host: str
) -> None:
    auth = await _register(http)
    answer = await http.post(
        "/agents/create",
        json={
            "name": "Sneaky",
            "llm_provider": "custom",
            "model": "m",
            "base_url": f"http://{host}/v1",
        },
        headers=auth,
    )
    assert answer.status_code == 422, answer.text[:300]
    assert "base_url" in {error["field"] for error in answer.json()["errors"]}
