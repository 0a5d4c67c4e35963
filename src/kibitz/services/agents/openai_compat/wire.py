"""OpenAI's answer shapes: the model list, a completion, stream chunks and their SSE framing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kibitz.kit.http.sse import encode_event
from kibitz.services.agents.models import Agent

# What OpenAI's finish reasons are called by the providers behind the agents.
_FINISH_REASONS = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}
DONE_FRAME = encode_event("[DONE]")


def new_completion_id() -> str:
    """An id in OpenAI's style, unique per completion."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def model_list(agents: list[Agent]) -> dict[str, Any]:
    """The caller's agents as OpenAI's model list (the agent's name shown beside its id)."""
    return {
        "object": "list",
        "data": [
            {
                "id": str(agent.id),
                "object": "model",
                "created": _epoch(agent.created_at),
                "owned_by": "kibitz",
                "name": agent.name,
            }
            for agent in agents
        ],
    }


def finish_reason(reason: str) -> str:
    """The provider's stop reason in OpenAI's words."""
    return _FINISH_REASONS.get(reason, "stop")


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    """OpenAI's usage object."""
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def completion(
    *, completion_id: str, model: str, content: str, reason: str, token_usage: dict[str, int]
) -> dict[str, Any]:
    """A whole (non-streamed) chat completion."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(reason),
            }
        ],
        "usage": token_usage,
        "system_fingerprint": None,
    }


class ChunkWriter:
    """The SSE frames of one streamed completion (`data: {chunk}`), sharing id, time and model."""

    def __init__(self, *, completion_id: str, model: str, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }
        self._include_usage = include_usage

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {**self._head, "choices": choices, **extra}
        if self._include_usage and "usage" not in extra:
            # With include_usage, OpenAI sends `usage: null` on every chunk but the last.
            chunk["usage"] = None
        return encode_event(json.dumps(chunk, separators=(",", ":")))

    def delta(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        """One choice delta (the role first, then pieces of content, then the finish reason)."""
        return self._frame(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]
        )

    def end(self, reason: str, token_usage: dict[str, int]) -> bytes:
        """The finish reason, the usage chunk when asked for, then `[DONE]`."""
        frames = self.delta({}, finish_reason(reason))
        if self._include_usage:
            frames += self._frame([], usage=token_usage)
        return frames + DONE_FRAME

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        """A failure after the stream opened: OpenAI's SDKs raise on a chunk with `error`."""
        return encode_event(json.dumps(body, separators=(",", ":")))


def _epoch(moment: datetime) -> int:
    # SQLite hands back naive datetimes; every time this service stores is UTC.
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())
