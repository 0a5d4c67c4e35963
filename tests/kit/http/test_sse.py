"""The kit's SSE codec: parsing from bytes (a batch per network read) and encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kibitz.kit.http.sse import (
    SseParser,
    SseTooLargeError,
    encode_comment,
    encode_event,
    encode_retry,
    sse_batches,
)


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def test_events_with_names_multiline_data_comments_and_crlf() -> None:
    parser = SseParser()
    events = parser.feed(
        b": keep-alive\nevent: ping\ndata: {}\n\ndata: a\r\ndata:b\r\n\r\nid: 7\nretry: 5\n\n"
    )
    assert events == [("ping", "{}"), (None, "a\nb")]
    assert parser.feed(b"event: last\ndata: [DO") == []
    assert parser.feed(b"NE]") == []
    assert parser.finish() == [("last", "[DONE]")]


async def test_batches_follow_network_reads() -> None:
    chunks = _chunks(b"data: 1\n\ndata: 2\n\ndata: ", b"3\n\n", b": comment only\n", b"data: 4")
    batches = [batch async for batch in sse_batches(chunks)]
    assert batches == [[(None, "1"), (None, "2")], [(None, "3")], [(None, "4")]]


def test_the_encoder_frames_what_the_parser_reads_back() -> None:
    framed = (
        encode_retry(2000)
        + encode_event('{"a":1}', event="delta", event_id="7")
        + encode_comment("heartbeat")
        + encode_event("two\nlines\r\nthree")
    )
    assert framed.startswith(
        b'retry: 2000\n\nid: 7\nevent: delta\ndata: {"a":1}\n\n: heartbeat\n\n'
    )
    parser = SseParser()
    assert parser.feed(framed) == [("delta", '{"a":1}'), (None, "two\nlines\nthree")]


def test_an_event_beyond_the_size_limit_is_refused() -> None:
    parser = SseParser(max_event_bytes=16)
    with pytest.raises(SseTooLargeError):
        parser.feed(b"data: " + b"x" * 17 + b"\n")
    parser = SseParser(max_event_bytes=16)
    with pytest.raises(SseTooLargeError):
        parser.feed(b"data: 0123456789\ndata: 0123456789\n")
    parser = SseParser(max_event_bytes=16)
    with pytest.raises(SseTooLargeError):
        parser.feed(b"data: " + b"x" * 40)  # a line that never ends
