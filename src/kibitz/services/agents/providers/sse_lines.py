"""Server-sent events from the bytes of a stream, a batch per network read.

The adapters read streams raw through the SDKs (unparsed responses): building a typed
model per chunk costs ~0.1 ms of CPU, the largest per-token cost of a relayed stream. Batches
tell the caller which events arrived together, so it can write them to its client at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

Event = tuple[str | None, str]


class SseParser:
    """Incremental parser: feed bytes, get the events they complete."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """Events completed by this chunk, in order."""
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        events: list[Event] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r").decode(), events)
        return events

    def finish(self) -> list[Event]:
        """An event left open when the stream ended without a blank line."""
        events: list[Event] = []
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r").decode(), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[Event]) -> None:
        if not line:
            if self._data:
                events.append((self._event, "\n".join(self._data)))
            self._event, self._data = None, []
        elif line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            self._event = line[6:].strip()
        # Comments (":") and the id/retry fields are of no use here.


async def sse_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[Event]]:
    """(event name, data) pairs, one list per network read that completed any."""
    parser = SseParser()
    async for chunk in chunks:
        events = parser.feed(chunk)
        if events:
            yield events
    tail = parser.finish()
    if tail:
        yield tail


async def read_to_end(batches: AsyncIterator[list[Event]], *, seconds: float = 0.25) -> None:
    """Read what is left of a finished stream (its last chunk, usually at once): a body read to
    its end lets the connection be reused; one that does not end soon is left to be closed."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for _ in batches:
                pass
