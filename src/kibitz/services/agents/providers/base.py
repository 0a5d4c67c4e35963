"""The one interface every provider adapter implements, and the errors they raise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant", "system", "tool"]
ErrorKind = Literal["rate_limited", "unavailable", "timeout", "rejected", "credentials"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool to be run (also a stream item: it comes whole, after the text
    and before the `StreamEnd`, its arguments assembled from the provider's streamed pieces)."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One message of the conversation sent to the model. An assistant turn may carry the tool
    calls the model made; a `tool` turn is the result of one of them (`tool_call_id`)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """What an agent asks its model: the agent's settings plus the conversation."""

    model: str
    instructions: str
    temperature: float
    messages: list[Turn]
    max_output_tokens: int | None = None
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class StreamStart:
    """The provider accepted the request (its answer's head is in) and the reply is on its way:
    a relay may open its own stream now, so its client is ready when the first token comes."""


@dataclass(frozen=True)
class TextDelta:
    """A piece of the reply, in order; `more` when the next piece has already arrived too
    (a relay may then write both to its client at once)."""

    text: str
    more: bool = False


@dataclass(frozen=True)
class StreamEnd:
    """The last item of every stream: token usage, why the model stopped (`tool_calls` when it
    waits for tool results, whichever the provider), which model answered."""

    input_tokens: int
    output_tokens: int
    finish_reason: str
    model: str


StreamItem = StreamStart | TextDelta | ToolCall | StreamEnd

# Every adapter reports a stop to call tools with this finish reason.
TOOL_CALLS_FINISH = "tool_calls"


class Provider(Protocol):
    """An LLM behind one interface."""

    name: str

    def stream(
        self, request: CompletionRequest, *, streamed: bool = True
    ) -> AsyncIterator[StreamItem]:
        """Text deltas, tool calls, then one `StreamEnd`; `streamed=False` makes one
        non-streamed call."""
        ...


@dataclass
class ProviderError(Exception):
    """An upstream failure, classified so callers retry (before the first token) or report it."""

    kind: ErrorKind
    message: str
    status: int | None = None
    retry_after: float | None = None
    after_first_token: bool = field(default=False)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        """429, 5xx, timeouts and connection errors may be retried (only before the first token)."""
        return self.kind in ("rate_limited", "unavailable", "timeout")


def error_for_status(status: int, headers: Mapping[str, str] | None) -> ProviderError:
    """Classify a provider's HTTP error answer (both SDKs raise one per status); never copies
    upstream text, which may echo the key."""
    retry_after = _retry_after(headers)
    if status == 429:
        return ProviderError(
            "rate_limited", "The model provider is rate limiting.", status, retry_after
        )
    if status in (401, 403):
        return ProviderError("credentials", "The model provider refused the credentials.", status)
    # 5xx includes Anthropic's 529 "overloaded".
    if status >= 500 or status == 408:
        return ProviderError("unavailable", "The model provider failed.", status, retry_after)
    return ProviderError("rejected", f"The model provider refused the request ({status}).", status)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return float(raw) / scale
            except ValueError:
                continue
    return None


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for servers that report no usage."""
    return max(1, len(text) // 4) if text else 0


def parse_tool_arguments(raw: str) -> dict[str, Any]:
    """A tool call's arguments as the model sent them (a JSON object; empty means none)."""
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise ProviderError("unavailable", "The model sent tool arguments that are not JSON.")
    return arguments
