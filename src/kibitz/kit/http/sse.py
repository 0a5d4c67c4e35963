"""Server-sent events (`text/event-stream`): the kit's one parser and one encoder.

The parser reads any stream of bytes (another service's answer, an LLM provider's raw stream
through its SDK) and hands back the events each network read completed, so a relay can write
events that arrived together in one go. Comments and the `id`/`retry` fields are skipped: no
reader here resumes a stream by id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

# (event name or None when the event named none, data)
SseEvent = tuple[str | None, str]

# 1 MiB: the largest event (or line) read; a stream that goes beyond is refused.
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024


class SseTooLargeError(ValueError):
    """An event (or a line of one) is larger than the parser accepts."""


class SseParser:
    """Incremental parser: feed bytes, get the events they complete."""

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._size = 0
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Events completed by this chunk, in order."""
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > self._max:
            raise SseTooLargeError("an event is too large")
        events: list[SseEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r").decode("utf-8", errors="replace"), events)
        return events

    def finish(self) -> list[SseEvent]:
        """An event left open when the stream ended without a blank line."""
        events: list[SseEvent] = []
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r").decode("utf-8", errors="replace"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SseEvent]) -> None:
        if not line:
            if self._data:
                events.append((self._event, "\n".join(self._data)))
            self._event, self._data, self._size = None, [], 0
        elif line.startswith("data:"):
            value = line[5:].removeprefix(" ")
            self._size += len(value)
            if self._size > self._max:
                raise SseTooLargeError("an event is too large")
            self._data.append(value)
        elif line.startswith("event:"):
            self._event = line[6:].removeprefix(" ")
        # Comments (":") and the id/retry fields are of no use here.


async def sse_batches(
    chunks: AsyncIterator[bytes], *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> AsyncIterator[list[SseEvent]]:
    """Events, one list per network read that completed any."""
    parser = SseParser(max_event_bytes=max_event_bytes)
    async for chunk in chunks:
        events = parser.feed(chunk)
        if events:
            yield events
    tail = parser.finish()
    if tail:
        yield tail


def encode_event(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One event, framed: `id:`, `event:`, one `data:` line per line of `data`, a blank line."""
    head = ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    if event is not None:
        head += f"event: {event}\n"
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return (head + "".join(f"data: {line}\n" for line in lines) + "\n").encode()
    return f"{head}data: {data}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """A comment line (a heartbeat that keeps proxies from timing the stream out)."""
    return f": {text}\n\n".encode() if text else b":\n\n"


def encode_retry(milliseconds: int) -> bytes:
    """How long a browser waits before it reconnects a dropped stream."""
    return b"retry: %d\n\n" % milliseconds


async def read_to_end(batches: AsyncIterator[list[SseEvent]], *, seconds: float = 0.25) -> None:
    """Read what is left of a finished stream (its last chunk, usually at once): a body read to
    its end lets the connection be reused; one that does not end soon is left to be closed."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for _ in batches:
                pass
