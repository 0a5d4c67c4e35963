"""Reading an agent's streamed reply: the SSE of `POST /agents/respond`, event by event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kibitz.kit.http import StreamedResponse


class ReplyFailedError(Exception):
    """The agent could not produce (the rest of) the reply; `detail` says why, for the user."""

    def __init__(self, detail: str) -> None:
        self.detail = detail[:500]
        super().__init__(self.detail)


@dataclass
class ReplyProgress:
    """What has streamed of one reply so far, and its usage once done."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    saved_length: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    finish_reason: str | None = None
    # The knowledge sources the agent was given (from its `done` event).
    citations: list[dict[str, Any]] | None = None

    def append(self, text: str) -> int:
        """Add a piece; returns the offset it starts at."""
        offset = self.length
        self.parts.append(text)
        self.length += len(text)
        return offset

    @property
    def content(self) -> str:
        """Everything streamed so far."""
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def finish(self, done: dict[str, Any]) -> None:
        """Record the `done` event's usage and reason."""
        usage = done.get("usage") or {}
        self.input_tokens = int(usage.get("input_tokens") or 0)
        self.output_tokens = int(usage.get("output_tokens") or 0)
        self.model = done.get("model")
        self.finish_reason = done.get("finish_reason")
        citations = done.get("citations")
        self.citations = list(citations) if isinstance(citations, list) and citations else None


def problem_detail(body: bytes, status: int) -> str:
    """The `detail` of a problem+json body, or a sentence naming the status."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("detail"):
        return str(document["detail"])
    return f"The agent service answered {status}."


async def sse_events(response: StreamedResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of a text/event-stream body, as they arrive."""
    async for event, data in response.aiter_events():
        try:
            payload = json.loads(data)
        except ValueError:
            payload = {}
        yield event, payload if isinstance(payload, dict) else {}
