"""Reading an agent's streamed reply: the SSE of `POST /agents/internal/respond` (agents'
`/agents/respond` for the sender, asked by chat itself), event by event.

A caller may offer the agent tools (`{name, description, parameters}`, the agents service's
shape) and continue a conversation with their results: the model's calls come back as
`tool_call` events (`{id, name, arguments}`) before `done`, collected in `ReplyProgress`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kibitz.kit.errors import ProblemError
from kibitz.kit.http import (
    OpenedStream,
    ServiceCallError,
    ServiceClient,
    StreamedResponse,
    acting_for,
)
from kibitz.services.chat.replies.orders import ReplyOrder

# One token is about four characters of English text: the estimate for usage no provider
# reported (a reply stopped or cut off before its `done` event).
_CHARS_PER_TOKEN = 4

DeltaHandler = Callable[[str], Awaitable[None]]


def estimated_tokens(text: str) -> int:
    """Tokens in `text`, estimated (rounded up)."""
    return -(-len(text) // _CHARS_PER_TOKEN)


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
    # The tools the model called in its latest answer ({id, name, arguments}), to be run.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

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

    @property
    def streamed(self) -> bool:
        """Whether any content reached the fan-out."""
        return self.length > 0

    def usage(self, context: list[dict[str, Any]]) -> tuple[int, int]:
        """(input, output) tokens: as the provider reported them, else estimated from what
        streamed (and the context it was asked from); nothing when nothing streamed."""
        if self.input_tokens or self.output_tokens or not self.streamed:
            return self.input_tokens, self.output_tokens
        asked = sum(estimated_tokens(message.get("content", "")) for message in context)
        return asked, estimated_tokens(self.content)

    def finish(self, done: dict[str, Any]) -> None:
        """Record the `done` event's usage (added up: a reply may take several calls, one per
        round of tool calls) and reason."""
        usage = done.get("usage") or {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)
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


def ask_agent(
    agents: ServiceClient,
    order: ReplyOrder,
    *,
    messages: list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> OpenedStream:
    """The agent asked for the reply (the order's context, or these `messages`; offering
    `tools` if given): the request is on its way when this returns, if a connection was ready."""
    # As the sender, by chat's service credential: the send was accepted, so its reply is
    # generated even if their token lapsed or was revoked meanwhile.
    headers = {
        **acting_for(tenant_id=order.tenant_id, user_id=order.user_id),
        "Accept": "text/event-stream",
    }
    if order.request_id:
        headers["X-Request-ID"] = order.request_id
    body: dict[str, Any] = {
        "agent_id": str(order.agent_id),
        "messages": order.context if messages is None else messages,
        "stream": True,
    }
    if tools:
        body["tools"] = tools
    return agents.stream("POST", "/agents/internal/respond", json=body, headers=headers)


async def read_reply(
    agents: ServiceClient,
    order: ReplyOrder,
    progress: ReplyProgress,
    on_delta: DeltaHandler,
    *,
    messages: list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    asked: OpenedStream | None = None,
) -> None:
    """Ask the agent (`ask_agent`, unless it was `asked` already) and pass each piece of its
    reply on, until its `done` event; the tools it called are in `progress.tool_calls` (raises
    ReplyFailedError when it fails or ends early)."""
    progress.tool_calls = []
    if asked is None:
        asked = ask_agent(agents, order, messages=messages, tools=tools)
    try:
        async with asked as response:
            if response.status_code != 200:
                raise ReplyFailedError(problem_detail(await response.aread(), response.status_code))
            async for event, data in sse_events(response):
                if event == "delta":
                    text = str(data.get("content") or "")
                    if text:
                        await on_delta(text)
                elif event == "tool_call":
                    progress.tool_calls.append(_tool_call(data))
                elif event == "done":
                    progress.finish(data)
                    await response.read_to_end()
                    return
                elif event == "error":
                    raise ReplyFailedError(str(data.get("detail") or data.get("title") or "error"))
    except ProblemError as exc:
        raise ReplyFailedError(exc.detail) from exc
    except ServiceCallError as exc:
        raise ReplyFailedError("The connection to the agent was lost.") from exc
    raise ReplyFailedError("The agent's reply ended unexpectedly.")


def _tool_call(data: dict[str, Any]) -> dict[str, Any]:
    """A `tool_call` event as the call to run (and to send back with its result)."""
    arguments = data.get("arguments")
    return {
        "id": str(data.get("id") or ""),
        "name": str(data.get("name") or ""),
        "arguments": arguments if isinstance(arguments, dict) else {},
    }
