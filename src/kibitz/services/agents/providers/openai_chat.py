"""OpenAI chat completions through the official SDK; also OpenAI-compatible servers (`custom`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai

from kibitz.kit.http.sse import read_to_end, sse_batches
from kibitz.services.agents.providers.base import (
    CompletionRequest,
    ProviderError,
    StreamEnd,
    StreamItem,
    StreamStart,
    TextDelta,
    ToolCall,
    Turn,
    error_for_status,
    estimate_tokens,
    parse_tool_arguments,
)


def map_openai_error(exc: Exception) -> ProviderError:
    """Classify an SDK (or transport) error; never copies upstream text, which may echo the key."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderError("timeout", "The model provider timed out.")
    if isinstance(exc, openai.APIStatusError):
        return error_for_status(exc.status_code, exc.response.headers)
    return ProviderError("unavailable", "The model provider could not be reached.")


_SDK_ERRORS = (openai.APIError, httpx2.HTTPError)


class OpenAIChat:
    """Chat completions: streamed with `stream_options.include_usage`, or one whole answer."""

    def __init__(self, client: openai.AsyncOpenAI, *, name: str = "openai") -> None:
        self.client = client
        self.name = name

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.instructions:
            messages.append({"role": "system", "content": request.instructions})
        messages.extend(_message(turn) for turn in request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "temperature": request.temperature,
        }
        if request.max_output_tokens:
            body["max_completion_tokens"] = request.max_output_tokens
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        return body

    async def stream(
        self, request: CompletionRequest, *, streamed: bool = True
    ) -> AsyncIterator[StreamItem]:
        """Text deltas, then usage and finish reason."""
        body = self._body(request)
        if not streamed:
            try:
                completion = await self.client.chat.completions.create(**body)
            except _SDK_ERRORS as exc:
                raise map_openai_error(exc) from None
            choice = completion.choices[0] if completion.choices else None
            text = (choice.message.content or "") if choice else ""
            if text:
                yield TextDelta(text)
            for call in (choice.message.tool_calls or []) if choice else []:
                function = getattr(call, "function", None)
                if function is not None:
                    yield ToolCall(call.id, function.name, parse_tool_arguments(function.arguments))
            usage = completion.usage
            yield StreamEnd(
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else estimate_tokens(text),
                finish_reason=(choice.finish_reason if choice else None) or "stop",
                model=completion.model or request.model,
            )
            return
        # Raw SSE through the SDK (its request, auth and errors; our parsing): see kit/http/sse.py.
        # The SDK's documented custom-request call (`client.post` to an httpx2 response) skips
        # `create()`'s transform of typed params (~1 ms of CPU per call); the JSON is the same.
        finish_reason = "stop"
        model = request.model
        input_tokens: int | None = None
        output_tokens: int | None = None
        produced: list[str] = []
        # Tool calls arrive in pieces keyed by index: id and name first, then argument text.
        calls: dict[int, dict[str, Any]] = {}
        try:
            response = await self.client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body={**body, "stream": True, "stream_options": {"include_usage": True}},
                options={"security": {"bearer_auth": True}},
                stream=True,
            )
            # Closing the response on the way out closes upstream: no tokens paid for nobody.
            async with contextlib.aclosing(response):
                yield StreamStart()
                batches = sse_batches(response.aiter_bytes())
                async for batch in batches:
                    texts: list[str] = []
                    done = False
                    for _, data in batch:
                        if data.startswith("[DONE]"):
                            done = True
                            break
                        chunk = json.loads(data)
                        if chunk.get("error"):
                            raise ProviderError(
                                "unavailable", "The model provider failed mid-stream."
                            )
                        model = chunk.get("model") or model
                        usage = chunk.get("usage")
                        if usage:
                            input_tokens = usage.get("prompt_tokens")
                            output_tokens = usage.get("completion_tokens")
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            content = delta.get("content")
                            if content:
                                texts.append(content)
                            for piece in delta.get("tool_calls") or ():
                                _add_tool_call_piece(calls, piece)
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                    produced.extend(texts)
                    for index, text in enumerate(texts):
                        yield TextDelta(text, more=index < len(texts) - 1)
                    if done:
                        await read_to_end(batches)
                        break
        except _SDK_ERRORS as exc:
            raise map_openai_error(exc) from None
        except ValueError:  # a chunk that is not JSON
            raise ProviderError(
                "unavailable", "The model provider sent a malformed stream."
            ) from None
        for _, call in sorted(calls.items()):
            yield ToolCall(call["id"], call["name"], parse_tool_arguments("".join(call["args"])))
        text = "".join(produced)
        yield StreamEnd(
            input_tokens=input_tokens
            if input_tokens is not None
            else sum(estimate_tokens(turn.content) for turn in request.messages),
            output_tokens=output_tokens if output_tokens is not None else estimate_tokens(text),
            finish_reason=finish_reason,
            model=model,
        )


def _message(turn: Turn) -> dict[str, Any]:
    """A turn in chat-completions shape: tool calls on the assistant, results as `tool` turns."""
    if turn.role == "tool":
        return {"role": "tool", "tool_call_id": turn.tool_call_id, "content": turn.content}
    if turn.tool_calls:
        return {
            "role": "assistant",
            "content": turn.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": json.dumps(call.arguments, separators=(",", ":")),
                    },
                }
                for call in turn.tool_calls
            ],
        }
    return {"role": turn.role, "content": turn.content}


def _add_tool_call_piece(calls: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    """Fold one streamed `tool_calls` delta into the call it belongs to."""
    index = piece.get("index", 0)
    call = calls.setdefault(index, {"id": "", "name": "", "args": []})
    call["id"] = piece.get("id") or call["id"]
    function = piece.get("function") or {}
    call["name"] = function.get("name") or call["name"]
    if function.get("arguments"):
        call["args"].append(function["arguments"])
