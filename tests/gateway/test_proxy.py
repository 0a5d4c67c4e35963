"""The reverse proxy: headers, request ids, streaming both ways, replicas, upstream failures."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kibitz.gateway.proxy import forwardable
from kibitz.kit.tracing import configure_tracing, shutdown_tracing
from tests.gateway.conftest import Harness, start_gateway, start_harness

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_listed_and_hop_by_hop_headers_are_dropped() -> None:
    headers = [
        (b"connection", b"keep-alive, X-Hop"),
        (b"x-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"upgrade", b"h2c"),
        (b"x-kibitz-service-token", b"forged"),
        # Only the gateway's own forwarding credential may vouch for X-Forwarded-For.
        (b"x-kibitz-forwarded-by", b"forged"),
        (b"accept", b"*/*"),
    ]
    assert forwardable(headers, frozenset()) == [(b"accept", b"*/*")]


async def test_hop_by_hop_and_internal_headers_are_stripped_towards_the_service(
    harness: Harness,
) -> None:
    response = await harness.http.get(
        "/users/echo",
        headers={
            **harness.auth(),
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eDp5",
            "X-Kibitz-Service-Token": "forged",
            "X-Kibitz-User-Id": "someone-else",
            "X-Kibitz-Client": "web",
            "X-Forwarded-For": "6.6.6.6",
            "X-Custom": "kept",
        },
    )
    assert response.status_code == 200
    seen = dict(response.json()["headers"])
    for name in ("x-hop", "keep-alive", "te", "proxy-authorization", "x-kibitz-service-token"):
        assert name not in seen, name
    assert [name for name in seen if name.startswith("x-kibitz-")] == ["x-kibitz-client"]
    assert seen["x-custom"] == "kept"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["authorization"].startswith("Bearer ")


async def test_hop_by_hop_and_internal_headers_are_stripped_towards_the_client(
    harness: Harness,
) -> None:
    response = await harness.http.get("/users/hop-headers", headers=harness.auth())
    assert response.status_code == 200
    for name in ("keep-alive", "x-private-hop", "x-kibitz-user-id", "proxy-authenticate"):
        assert name not in response.headers, name
    assert response.headers["x-kept"] == "yes"
    assert response.headers["set-cookie"].startswith("session=abc")
    assert response.headers.get_list("server") == ["uvicorn"]


PUBLIC_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_a_public_trace_context_never_reaches_a_service(harness: Harness) -> None:
    response = await harness.http.get(
        "/users/echo",
        headers={**harness.auth(), "traceparent": PUBLIC_TRACEPARENT, "tracestate": "x=1"},
    )
    names = {name for name, _ in response.json()["headers"]}
    assert "traceparent" not in names
    assert "tracestate" not in names


async def test_with_tracing_on_the_service_continues_the_gateways_own_trace(
    harness: Harness,
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("kibitz-test", exporter=exporter)
    try:
        response = await harness.http.get(
            "/users/echo", headers={**harness.auth(), "traceparent": PUBLIC_TRACEPARENT}
        )
    finally:
        shutdown_tracing()
    sent = [value for name, value in response.json()["headers"] if name == "traceparent"]
    spans = exporter.get_finished_spans()
    hop = next(span for span in spans if span.kind == SpanKind.CLIENT)
    root = next(span for span in spans if span.kind == SpanKind.SERVER)
    assert len(sent) == 1
    assert sent[0].startswith(f"00-{hop.context.trace_id:032x}-{hop.context.span_id:016x}-")
    assert hop.parent is not None and hop.parent.span_id == root.context.span_id
    assert root.parent is None and "0af7651916cd43dd" not in sent[0]


async def test_the_clients_request_id_is_passed_upstream_and_returned(harness: Harness) -> None:
    response = await harness.http.get(
        "/users/echo", headers={**harness.auth(), "X-Request-ID": "trace-me-123"}
    )
    assert dict(response.json()["headers"])["x-request-id"] == "trace-me-123"
    assert response.headers["x-request-id"] == "trace-me-123"


async def test_a_request_id_is_made_when_the_client_sends_none(harness: Harness) -> None:
    response = await harness.http.get("/users/echo", headers=harness.auth())
    made = response.headers["x-request-id"]
    assert made and dict(response.json()["headers"])["x-request-id"] == made


async def test_path_encoding_query_method_and_body_reach_the_service_unchanged(
    harness: Harness,
) -> None:
    response = await harness.http.request(
        "PATCH",
        "/users/echo/a%2Fb/caf%C3%A9?x=1&y=%20z&x=2",
        headers=harness.auth(),
        json={"name": "é"},
    )
    body = response.json()
    assert body["method"] == "PATCH"
    assert body["raw_path"] == "/users/echo/a%2Fb/caf%C3%A9"
    assert body["query"] == "x=1&y=%20z&x=2"
    assert body["body"] == '{"name":"é"}'


async def test_head_requests_get_the_head_only(harness: Harness) -> None:
    response = await harness.http.head("/users/echo", headers=harness.auth())
    assert response.status_code == 200
    assert response.content == b""


async def test_an_sse_event_reaches_the_client_before_the_service_finishes(
    harness: Harness,
) -> None:
    chat = harness.upstreams["chat"]
    chat.state.sse_gate.clear()
    chat.state.sse_finished = False
    async with harness.http.stream("GET", "/chat/sse", headers=harness.auth()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        received = []
        while "data: one" not in received:
            received.append(await asyncio.wait_for(anext(lines), timeout=5))
        # The service is still waiting for our go: nothing was buffered on the way.
        assert not chat.state.sse_finished
        chat.state.sse_gate.set()
        rest = [line async for line in lines]
    assert "data: two" in rest and "event: done" in rest
    assert chat.state.sse_finished


async def test_a_client_that_leaves_stops_an_endless_stream_upstream(harness: Harness) -> None:
    chat = harness.upstreams["chat"]
    async with harness.http.stream("GET", "/chat/endless", headers=harness.auth()) as response:
        async for _ in response.aiter_raw():
            break
        assert chat.state.endless_open
    for _ in range(100):
        if not chat.state.endless_open:
            break
        await asyncio.sleep(0.05)
    assert not chat.state.endless_open


async def test_request_bodies_stream_to_the_service(harness: Harness) -> None:
    chunk = b"x" * 65536

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):  # 1 MiB: the gateway's limit for an ordinary route
            yield chunk

    response = await harness.http.post("/users/upload", headers=harness.auth(), content=body())
    assert response.json()["bytes"] == 16 * 65536
    # Arrived in pieces, not as one buffered blob.
    assert response.json()["chunks"] > 1
    sized = await harness.http.post("/users/upload", headers=harness.auth(), content=chunk * 3)
    assert sized.json()["bytes"] == 3 * 65536


async def test_an_upstream_that_dies_mid_answer_cuts_the_answer(harness: Harness) -> None:
    with pytest.raises(httpx.HTTPError):
        async with harness.http.stream("GET", "/users/broken", headers=harness.auth()) as response:
            assert response.status_code == 200
            await response.aread()


async def test_a_slow_service_answers_504(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_READ_TIMEOUT_SECONDS": "0.3", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth", "users"), env=env) as running:
        response = await running.http.get("/users/slow?seconds=2", headers=running.auth())
        assert response.status_code == 504
        assert response.headers["content-type"] == "application/problem+json"


@asynccontextmanager
async def _garbage_server() -> AsyncIterator[str]:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_bad_upstream_answer_is_a_502(tmp_path: Path) -> None:
    async with start_harness(services=("auth",), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running:
        auth_url = running.platform.service_urls["auth"]
        async with (
            _garbage_server() as garbage,
            start_gateway(service_urls={"auth": auth_url, "users": [garbage]}) as (url, _, _p),
            httpx.AsyncClient(base_url=url, trust_env=False) as http,
        ):
            for method in ("GET", "POST"):
                response = await http.request(method, "/users/echo", headers=running.auth())
                assert response.status_code == 502, method
                assert response.headers["content-type"] == "application/problem+json"


async def test_no_reachable_replica_is_a_503_with_retry_after(tmp_path: Path) -> None:
    async with start_harness(services=("auth",), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running:
        dead = [f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"]
        async with (
            start_gateway(
                service_urls={"auth": running.platform.service_urls["auth"], "users": dead}
            ) as (url, _, _p),
            httpx.AsyncClient(base_url=url, trust_env=False) as http,
        ):
            response = await http.post("/users/echo", headers=running.auth(), json={})
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) > 0


@contextmanager
def _replica_processes(count: int) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    processes = []
    try:
        for index in range(count):
            port = _free_port()
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.gateway.upstream",
                    "--service",
                    "users",
                    "--replica",
                    f"r{index}",
                    "--port",
                    str(port),
                ],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            processes.append((process, f"http://127.0.0.1:{port}"))
        for process, url in processes:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, "replica did not start"
                try:
                    if httpx.get(f"{url}/users/things/1", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "replica did not start in time"
                time.sleep(0.1)
        yield processes
    finally:
        for process, _ in processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in processes:
            process.wait(timeout=10)


@pytest.mark.slow
async def test_requests_are_balanced_over_replica_processes_and_survive_one_dying(
    tmp_path: Path,
) -> None:
    async with start_harness(services=("auth",), env={"KIBITZ_WEB_DIST": str(tmp_path)}) as running:
        with _replica_processes(2) as replicas:
            urls = {
                "auth": running.platform.service_urls["auth"],
                "users": [u for _, u in replicas],
            }
            async with (
                start_gateway(service_urls=urls) as (url, _, _p),
                httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as http,
            ):
                seen = [
                    (await http.get("/users/echo", headers=running.auth())).json()["replica"]
                    for _ in range(10)
                ]
                assert seen.count("r0") == 5 and seen.count("r1") == 5

                replicas[0][0].send_signal(signal.SIGKILL)
                replicas[0][0].wait(timeout=10)
                answers = []
                for index in range(10):
                    method = "POST" if index % 2 else "GET"
                    response = await http.request(method, "/users/echo", headers=running.auth())
                    answers.append((response.status_code, response.json()["replica"]))
                assert answers == [(200, "r1")] * 10


async def test_behind_a_trusted_balancer_its_forwarded_headers_are_kept(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_TRUST_FORWARDED_FOR": "true", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth", "users"), env=env) as running:
        response = await running.http.get(
            "/users/echo",
            headers={
                **running.auth(),
                "X-Forwarded-For": "203.0.113.7, 198.51.100.2",
                "X-Forwarded-Proto": "https",
            },
        )
        seen = dict(response.json()["headers"])
        assert seen["x-forwarded-for"] == "203.0.113.7, 198.51.100.2"
        assert seen["x-forwarded-proto"] == "https"


async def test_a_body_over_the_gateways_limit_is_413_and_never_forwarded(tmp_path: Path) -> None:
    env = {
        "KIBITZ_WEB_DIST": str(tmp_path / "no-web-build"),
        "KIBITZ_GATEWAY_MAX_BODY_BYTES": "100000",
        "KIBITZ_GATEWAY_MAX_LARGE_BODY_BYTES": "300000",
    }

    async def chunks(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 10_000):
            yield b"x" * 10_000

    async with start_harness(services=("auth", "users", "agents"), env=env) as harness:
        users = harness.upstreams["users"]
        declared = await harness.http.post(
            "/users/echo", headers=harness.auth(), content=b"x" * 100_001
        )
        assert users.state.hits == 0
        chunked = await harness.http.post(
            "/users/upload", headers=harness.auth(), content=chunks(200_000)
        )
        unauthenticated = await harness.http.post("/auth/login", content=b"x" * 100_001)
        for answer in (declared, chunked, unauthenticated):
            assert answer.status_code == 413, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["detail"] == "The request body may hold at most 100000 bytes."
            assert answer.headers["x-request-id"]
        within = await harness.http.post(
            "/users/echo", headers=harness.auth(), content=b"x" * 100_000
        )
        assert within.status_code == 200 and users.state.hits == 1
        # A whole conversation may be larger: the large ceiling applies to /agents/respond.
        large = await harness.http.post(
            "/agents/respond", headers=harness.auth(), content=b"x" * 200_000
        )
        assert large.status_code != 413
        too_large = await harness.http.post(
            "/agents/respond", headers=harness.auth(), content=b"x" * 300_001
        )
        assert too_large.status_code == 413
