"""The proxy's HTTP/1.1 client against scripted raw servers: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from kibitz.kit.http.transport import (
    UpstreamClient,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server running `handler` per connection; yields its URL and a connection count."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections
    finally:
        server.close()


def _client(*, read_timeout: float = 2.0, connect_timeout: float = 1.0) -> UpstreamClient:
    return UpstreamClient(
        connect_timeout=connect_timeout, read_timeout=read_timeout, write_timeout=2.0
    )


async def _body(answer: object) -> bytes:
    return b"".join([piece async for piece in answer.chunks()])  # type: ignore[attr-defined]


async def _keep_alive_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()


async def test_a_connection_is_kept_alive_for_the_next_request() -> None:
    client = _client()
    async with raw_server(_keep_alive_answers) as (url, connections):
        for _ in range(3):
            answer = await client.send(url, "GET", b"/x", [], None)
            assert answer.status == 200 and await _body(answer) == b"ok"
            answer.close()
        assert len(connections) == 1
    await client.aclose()


async def test_chunked_answers_are_unframed_piece_by_piece() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"6;ext=1\r\n world\r\n0\r\ntrailer: x\r\n\r\n")
        await writer.drain()
        await reader.read()

    client = _client()
    async with raw_server(handler) as (url, _):
        answer = await client.send(url, "GET", b"/", [], None)
        assert not answer.has_length
        pieces = [piece async for piece in answer.chunks()]
        assert pieces == [b"hello", b" world"]
        answer.close()
    await client.aclose()


async def test_interim_answers_are_skipped_and_head_answers_have_no_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n")
        await writer.drain()
        await reader.read()

    client = _client()
    async with raw_server(handler) as (url, _):
        answer = await client.send(url, "HEAD", b"/", [], None)
        assert answer.status == 200 and await _body(answer) == b""
        answer.close()
    await client.aclose()


async def test_a_body_without_length_runs_until_the_server_closes() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        await writer.drain()

    client = _client()
    async with raw_server(handler) as (url, _):
        answer = await client.send(url, "GET", b"/", [], None)
        assert await _body(answer) == b"all of it"
        answer.close()
    await client.aclose()


async def test_a_request_body_is_sent_chunked_when_its_length_is_unknown() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received.append(head)
        received.append(await reader.readuntil(b"0\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b""
        yield b"defg"

    client = _client()
    async with raw_server(handler) as (url, _):
        answer = await client.send(url, "POST", b"/up", [(b"x-a", b"1")], body(), chunked_body=True)
        assert answer.status == 204
        answer.close()
    assert b"transfer-encoding: chunked" in received[0]
    assert received[1] == b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    await client.aclose()


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced_transparently() -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        # Pretend the keep-alive timer fired just as the client reuses the connection.
        await asyncio.sleep(0.05)

    client = _client()
    async with raw_server(one_answer_then_close) as (url, connections):
        first = await client.send(url, "GET", b"/", [], None)
        await _body(first)
        first.close()
        await asyncio.sleep(0.01)
        second = await client.send(url, "GET", b"/", [], None)
        assert await _body(second) == b"ok"
        second.close()
        assert len(connections) == 2
    await client.aclose()


async def test_a_body_held_whole_goes_with_its_head_and_is_sent_again_on_a_stale_connection() -> (
    None
):
    requests: list[bytes] = []

    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # One read: head and body arrive in the same write.
        requests.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then the server lets the kept-alive connection go

    client = _client()
    async with raw_server(one_answer_then_close) as (url, connections):
        for _ in range(2):  # the second goes through `send_now`'s kept-alive connection
            answer = await client.send(url, "POST", b"/in", [], b'{"n":1}')
            assert await _body(answer) == b"ok"
            answer.close()
            await asyncio.sleep(0.01)
        assert len(connections) == 2  # the second send went again, on a fresh connection
    assert len(requests) == 2
    for request in requests:
        head, _, body = request.partition(b"\r\n\r\n")
        assert b"content-length: 7" in head and body == b'{"n":1}'
    await client.aclose()


async def test_failures_are_told_apart() -> None:
    client = _client(read_timeout=0.2)

    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    async with raw_server(silent) as (url, _):
        with pytest.raises(UpstreamTimeoutError):
            await client.send(url, "GET", b"/", [], None)
    async with raw_server(garbage) as (url, _):
        with pytest.raises(UpstreamProtocolError):
            await client.send(url, "GET", b"/", [], None)
    with pytest.raises(UpstreamConnectError):
        await client.send(url, "GET", b"/", [], None)
    await client.aclose()


async def test_a_body_that_stalls_times_out_but_a_slow_reader_does_not() -> None:
    async def two_chunks_then_silence(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n")
        writer.write(b"2\r\ncd\r\n")
        await writer.drain()
        await reader.read()  # then nothing, ever

    client = _client(read_timeout=0.2)
    async with raw_server(two_chunks_then_silence) as (url, _):
        answer = await client.send(url, "GET", b"/", [], None)
        pieces = answer.chunks()
        assert await anext(pieces) == b"ab"
        await asyncio.sleep(0.5)  # the reader dawdles past the timeout: not the upstream's fault
        assert await anext(pieces) == b"cd"
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeoutError):
            await anext(pieces)
        waited = asyncio.get_running_loop().time() - started
        assert 0.15 <= waited < 1.0
        answer.close()
    await client.aclose()


async def test_a_body_cut_short_is_an_error() -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    client = _client()
    async with raw_server(short) as (url, _):
        answer = await client.send(url, "GET", b"/", [], None)
        with pytest.raises(UpstreamProtocolError):
            await _body(answer)
        answer.close()
    await client.aclose()


async def test_a_connect_made_while_the_loop_stalled_is_no_timeout() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = _client(connect_timeout=0.5)
    try:
        sending = asyncio.create_task(
            client.send(f"http://127.0.0.1:{port}", "GET", b"/", [], None)
        )
        # The loop is busy elsewhere past the connect timeout (a collection, a starved
        # process): the kernel made the connection in time, so it is no timeout.
        asyncio.get_running_loop().call_soon(time.sleep, 0.8)
        answer_ = await sending
        assert answer_.status == 200
        answer_.close()
    finally:
        await client.aclose()
        server.close()
