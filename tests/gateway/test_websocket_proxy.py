"""WebSocket pass-through for /chat/ws/{chat_id}."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.gateway.conftest import Harness


def _ws_url(harness: Harness, path: str) -> str:
    return "ws" + harness.url.removeprefix("http") + path


async def test_frames_pass_both_ways_with_the_token_in_the_header(harness: Harness) -> None:
    async with connect(
        _ws_url(harness, "/chat/ws/c1?since=5"),
        additional_headers={**harness.auth(), "X-Kibitz-User-Id": "forged"},
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["chat_id"] == "c1"
        assert hello["query"] == "since=5"
        assert hello["kibitz_headers"] == []
        assert hello["authorization"].startswith("Bearer ")
        await ws.send("ping")
        assert await ws.recv() == "echo:ping"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"


async def test_a_browser_may_pass_the_token_as_a_subprotocol(harness: Harness) -> None:
    async with connect(
        _ws_url(harness, "/chat/ws/c2"),
        subprotocols=["bearer", harness.token()],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "bearer"
        assert json.loads(await ws.recv())["chat_id"] == "c2"


async def test_a_browser_may_send_the_token_as_the_first_message(harness: Harness) -> None:
    auth_message = json.dumps({"type": "auth", "token": harness.token()})
    async with connect(_ws_url(harness, "/chat/ws/c5")) as ws:
        await ws.send(auth_message)
        assert json.loads(await ws.recv())["chat_id"] == "c5"
        # The service gets the auth message too (it authenticates the same way).
        assert await ws.recv() == f"echo:{auth_message}"


async def test_a_bad_first_message_token_closes_with_4401(harness: Harness) -> None:
    async with connect(_ws_url(harness, "/chat/ws/c6")) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "forged"}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_the_services_close_code_reaches_the_client(harness: Harness) -> None:
    async with connect(_ws_url(harness, "/chat/ws/c3"), additional_headers=harness.auth()) as ws:
        await ws.recv()
        await ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


async def test_a_websocket_with_a_bad_token_is_refused_with_401(harness: Harness) -> None:
    for headers in ({"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer a.b.c"}):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_ws_url(harness, "/chat/ws/c4"), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert refused.value.response.headers["content-type"] == "application/problem+json"


async def test_a_websocket_that_never_authenticates_is_closed_with_4401(harness: Harness) -> None:
    async with connect(_ws_url(harness, "/chat/ws/c7")) as ws:
        await ws.send("hello, no token here")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
