from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http import INTERNAL_TOKEN_HEADER, ServiceClient, UpstreamPool
from kibitz.runtime.server import bind_socket, server_config
from tests.fixtures.serving import serving


def test_round_robin_visits_every_replica_in_turn() -> None:
    pool = UpstreamPool(["http://a", "http://b", "http://c"])
    firsts = [pool.candidates()[0] for _ in range(6)]
    assert firsts == ["http://a", "http://b", "http://c"] * 2


def test_a_failed_replica_is_tried_last_during_its_cooldown() -> None:
    pool = UpstreamPool(["http://a", "http://b"], cooldown_seconds=60)
    pool.mark_failed("http://a")
    assert [pool.candidates()[0] for _ in range(4)] == ["http://b"] * 4
    pool.mark_ok("http://a")
    assert {pool.candidates()[0] for _ in range(2)} == {"http://a", "http://b"}


def test_an_empty_pool_has_no_replica_to_offer() -> None:
    # A service the deployment lacks: every call finds no replica (ServiceClient answers 503).
    assert UpstreamPool([]).candidates() == []


async def test_service_client_skips_a_dead_replica_and_sends_the_credential() -> None:
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"token": request.headers.get(INTERNAL_TOKEN_HEADER)}

    dead = bind_socket("127.0.0.1", 0)
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there any more: connection refused
    async with serving(app) as live_url:
        client = ServiceClient(
            "echo", [f"http://127.0.0.1:{dead_port}", live_url], internal_token="s3"
        )
        try:
            for _ in range(3):
                response = await client.request("GET", "/echo")
                assert response.json() == {"token": "s3"}
        finally:
            await client.aclose()


async def test_service_client_with_no_live_replica_raises_unavailable() -> None:
    dead = bind_socket("127.0.0.1", 0)
    port = dead.getsockname()[1]
    dead.close()
    client = ServiceClient("ghost", [f"http://127.0.0.1:{port}"])
    with pytest.raises(ServiceUnavailable) as caught:
        await client.request("GET", "/")
    assert caught.value.status == 503
    assert "Retry-After" in caught.value.headers
    await client.aclose()


def test_uvicorn_config_keeps_our_logging() -> None:
    config = server_config(FastAPI())
    assert isinstance(config, uvicorn.Config)
    assert config.log_config is None


async def test_a_streamed_event_stream_is_read_event_by_event_as_it_arrives() -> None:
    app = FastAPI()
    release = asyncio.Event()

    @app.get("/events")
    async def events() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b': a comment\n\nevent: delta\ndata: {"n": 1}\n\n'
            yield b"event: delta\ndata: line one"  # an event split across writes
            await release.wait()
            yield b"\ndata: line two\n\ndata: plain\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    async with serving(app) as url:
        client = ServiceClient("sse", [url])
        try:
            async with client.stream("GET", "/events") as response:
                events = response.aiter_events()
                assert await anext(events) == ("delta", '{"n": 1}')  # before the rest was written
                release.set()
                assert [event async for event in events] == [
                    ("delta", "line one\nline two"),
                    ("message", "plain"),
                ]
        finally:
            await client.aclose()


async def test_a_stream_on_a_kept_alive_connection_is_written_before_it_is_entered() -> None:
    app = FastAPI()
    received: list[dict[str, int]] = []
    release = asyncio.Event()
    gone: list[int] = []

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/slow")
    async def slow(request: Request) -> StreamingResponse:
        payload = await request.json()
        received.append(payload)
        if payload["n"] == 2:  # abandoned by the caller: it sees the connection go
            while not await request.is_disconnected():
                await asyncio.sleep(0.01)
            gone.append(payload["n"])
        await release.wait()  # the answer is held back until the test has looked

        async def body() -> AsyncIterator[bytes]:
            yield b"data: done\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    async with serving(app) as url:
        client = ServiceClient("slow", [url])
        try:
            # No connection yet: nothing goes out until the stream is entered.
            cold = client.stream("POST", "/slow", json={"n": 0})
            await asyncio.sleep(0.2)
            assert received == []
            cold.abandon()
            (await client.request("GET", "/ping")).raise_for_status()  # one kept alive now

            opened = client.stream("POST", "/slow", json={"n": 1})
            await asyncio.wait_for(_until(lambda: bool(received)), 5)  # not entered yet
            assert received == [{"n": 1}]
            release.set()
            async with opened as response:
                assert [event async for event in response.aiter_events()] == [("message", "done")]

            abandoned = client.stream("POST", "/slow", json={"n": 2})  # reuses that connection
            await asyncio.wait_for(_until(lambda: len(received) == 2), 5)
            abandoned.abandon()
            await asyncio.wait_for(_until(lambda: gone == [2]), 5)
        finally:
            await client.aclose()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def test_a_stream_reuses_its_connection_skips_dead_replicas_and_reads_error_bodies() -> None:
    app = FastAPI()
    peers: list[object] = []

    @app.post("/events")
    async def events(request: Request) -> StreamingResponse:
        peers.append(request.client)
        payload = await request.json()

        async def body() -> AsyncIterator[bytes]:
            yield f"data: {payload['n']}\n\n".encode()

        return StreamingResponse(body(), media_type="text/event-stream")

    @app.post("/refused")
    async def refused() -> JSONResponse:
        return JSONResponse({"detail": "no"}, status_code=403)

    dead = bind_socket("127.0.0.1", 0)
    dead_port = dead.getsockname()[1]
    dead.close()
    async with serving(app) as live_url:
        client = ServiceClient("sse", [f"http://127.0.0.1:{dead_port}", live_url])
        try:
            for number in range(3):
                async with client.stream("POST", "/events", json={"n": number}) as response:
                    assert response.status_code == 200
                    assert [event async for event in response.aiter_events()] == [
                        ("message", str(number))
                    ]
            assert len(set(map(str, peers))) == 1  # one kept-alive connection for all three
            async with client.stream("POST", "/refused", json={}) as response:
                assert response.status_code == 403
                assert json.loads(await response.aread()) == {"detail": "no"}
        finally:
            await client.aclose()


async def test_a_stream_with_no_live_replica_raises_unavailable() -> None:
    dead = bind_socket("127.0.0.1", 0)
    port = dead.getsockname()[1]
    dead.close()
    client = ServiceClient("ghost", [f"http://127.0.0.1:{port}"])
    with pytest.raises(ServiceUnavailable):
        async with client.stream("POST", "/", json={}):
            pass
    await client.aclose()
