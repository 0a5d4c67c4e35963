"""Parsing server-sent events from bytes, a batch per network read."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kibitz.services.agents.providers.sse_lines import SseParser, sse_batches


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
