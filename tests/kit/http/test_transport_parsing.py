"""Fuzzing the transport's answer parsing: bad input is refused with the kit's errors, never
hangs, and a good answer split at every byte boundary reads the same."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
import uvloop

from kibitz.kit.http.transport import (
    MAX_HEAD_BYTES,
    UpstreamClient,
    UpstreamError,
    UpstreamProtocolError,
)

# Every case must end well inside this (a hang would wait for the 2 s read timeout).
_CASE_SECONDS = 1.5


@asynccontextmanager
async def scripted_server(pieces: Sequence[bytes]) -> AsyncIterator[str]:
    """A server that reads one request head, writes `pieces` one write (and flush) each, then
    closes the connection."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def _exchange(pieces: Sequence[bytes], method: str = "GET") -> tuple[int, bytes]:
    """(status, body) of the scripted answer; the kit's errors propagate."""
    client = UpstreamClient(connect_timeout=1.0, read_timeout=2.0, write_timeout=1.0)
    try:
        async with scripted_server(pieces) as url:
            async with asyncio.timeout(_CASE_SECONDS):
                answer = await client.send(url, method, b"/", [], None)
                try:
                    return answer.status, await answer.read()
                finally:
                    answer.close()
    finally:
        await client.aclose()


GOOD_ANSWERS = [
    (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello", b"hello"),
    (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=y\r\n \r\n5\r\nworld\r\n0\r\ntrailer: t\r\n\r\n",
        b"hello world",
    ),
    (b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", b""),
]


@pytest.mark.parametrize(("raw", "body"), GOOD_ANSWERS)
async def test_an_answer_split_at_every_byte_boundary_reads_the_same(
    raw: bytes, body: bytes
) -> None:
    for cut in range(1, len(raw)):
        status, read = await _exchange([raw[:cut], raw[cut:]])
        assert (status, read) == (204 if b"204" in raw else 200, body), cut


async def test_an_answer_sent_a_byte_at_a_time_reads_the_same() -> None:
    raw, body = GOOD_ANSWERS[1]
    assert await _exchange([raw[i : i + 1] for i in range(len(raw))]) == (200, body)


BAD_ANSWERS = {
    "not http": b"SMTP ready\r\n\r\n",
    "status without code": b"HTTP/1.1 OK\r\n\r\n",
    "four-digit status": b"HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n",
    "letters in the status": b"HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n",
    "unknown version": b"HTTP/7.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    "bare LF line ends": b"HTTP/1.1 200 OK\ncontent-length: 0\n\n",
    "header without colon": b"HTTP/1.1 200 OK\r\nbroken header\r\ncontent-length: 0\r\n\r\n",
    "space before the colon": b"HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n",
    "two lengths": b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
    "length and chunked": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "negative length": b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    "length not a number": b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n",
    "chunk size not hex": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n",
    "chunk size overflowing": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffffff\r\n"
    ),
    "chunk longer than its size": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n"
    ),
    "chunk without its CRLF": (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab0\r\n\r\n"
    ),
    "body cut short": b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc",
    "chunks cut short": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
    "head cut short": b"HTTP/1.1 200 OK\r\ncontent-le",
    "protocol switch": (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n"
    ),
    "nothing at all": b"",
    "oversized header": b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
    "endless header": b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * (4 * MAX_HEAD_BYTES),
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"x-h: v\r\n" * (MAX_HEAD_BYTES // 8 + 1),
    "a second answer glued on": (
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_a_malformed_answer_is_refused_with_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        await _exchange([raw])


@pytest.mark.parametrize("raw", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
async def test_a_malformed_answer_split_anywhere_is_refused_too(raw: bytes) -> None:
    cuts = random.Random(len(raw)).sample(
        range(1, max(2, len(raw))), k=min(8, max(1, len(raw) - 1))
    )
    for cut in cuts:
        with pytest.raises(UpstreamProtocolError):
            await _exchange([raw[:cut], raw[cut:]])


async def test_random_bytes_after_a_status_line_never_hang_or_escape_as_other_errors() -> None:
    rng = random.Random(16)
    alphabet = b"\r\n :;0123456789abcdefxzHTTP/1.\t\x00\xff-"
    for _ in range(150):
        tail = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        raw = b"HTTP/1.1 200 OK\r\n" + tail
        # Refused, or read until the close: both are clean; anything else escapes and fails.
        with contextlib.suppress(UpstreamError):
            await _exchange([raw])


def test_on_uvloop_as_in_production_good_answers_read_and_bad_ones_are_refused() -> None:
    async def both() -> None:
        raw, body = GOOD_ANSWERS[1]
        assert await _exchange([raw[:7], raw[7:]]) == (200, body)
        with pytest.raises(UpstreamProtocolError):
            await _exchange([BAD_ANSWERS["obs-fold"]])

    uvloop.run(both())
