"""Anthropic messages through the official SDK; the agent's instructions are the system prompt."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2

from kibitz.kit.http.sse import sse_batches
from kibitz.services.agents.providers.base import (
    TOOL_CALLS_FINISH,
    CompletionRequest,
    ProviderError,
    StreamEnd,
    StreamItem,
    StreamStart,
    TextDelta,
    ToolCall,
    Turn,
    error_for_status,
    parse_tool_arguments,
)

_SDK_ERRORS = (anthropic.APIError, httpx2.HTTPError)


def map_anthropic_error(exc: Exception) -> ProviderError:
    """Classify an SDK (or transport) error; never copies upstream text, which may echo the key."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderError("timeout", "The model provider timed out.")
    if isinstance(exc, anthropic.APIStatusError):
        return error_for_status(exc.status_code, exc.response.headers)
    return ProviderError("unavailable", "The model provider could not be reached.")


class AnthropicMessages:
    """The messages API: streamed (message_start … message_stop) or one whole message."""

    name = "anthropic"

    def __init__(self, client: anthropic.AsyncAnthropic, *, send_temperature: bool = True) -> None:
        self.client = client
        self.send_temperature = send_temperature

    def _body(self, request: CompletionRequest) -> dict[str, Any]:
        # Anthropic takes the system prompt apart from the turns: instructions + system turns.
        system_parts = [request.instructions] if request.instructions else []
        system_parts += [turn.content for turn in request.messages if turn.role == "system"]
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_output_tokens or 1024,
            "messages": _messages(request.messages),
        }
        if request.tools:
            body["tools"] = [
                {
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                }
                for tool in request.tools
            ]
        if system_parts:
            body["system"] = "\n\n".join(system_parts)
        if self.send_temperature:
            # This SDK version has no `temperature` argument; the API field still exists.
            body["extra_body"] = {"temperature": request.temperature}
        return body

    async def stream(
        self, request: CompletionRequest, *, streamed: bool = True
    ) -> AsyncIterator[StreamItem]:
        """Text deltas, then usage and stop reason."""
        body = self._body(request)
        if not streamed:
            try:
                message = await self.client.messages.create(**body)
            except _SDK_ERRORS as exc:
                raise map_anthropic_error(exc) from None
            text = "".join(getattr(block, "text", "") for block in message.content)
            if text:
                yield TextDelta(text)
            for block in message.content:
                if block.type == "tool_use":
                    yield ToolCall(block.id, block.name, dict(block.input or {}))
            yield StreamEnd(
                input_tokens=message.usage.input_tokens,
                output_tokens=message.usage.output_tokens,
                finish_reason=_finish(message.stop_reason or "end_turn"),
                model=message.model or request.model,
            )
            return
        input_tokens = 0
        output_tokens = 0
        finish_reason = "end_turn"
        model = request.model
        # tool_use blocks by index: id and name at the block's start, then input JSON pieces.
        calls: dict[int, dict[str, Any]] = {}
        try:
            async with self.client.messages.with_streaming_response.create(
                **body, stream=True
            ) as response:
                yield StreamStart()
                # Raw SSE through the SDK (see kit/http/sse.py); leaving the block closes upstream.
                async for batch in sse_batches(response.iter_bytes()):
                    texts: list[str] = []
                    for name, data in batch:
                        if name == "ping" or name is None:
                            continue
                        if name == "error":
                            raise ProviderError(
                                "unavailable", "The model provider failed mid-stream."
                            )
                        event = json.loads(data)
                        if name == "message_start":
                            message = event.get("message") or {}
                            model = message.get("model") or model
                            usage = message.get("usage") or {}
                            input_tokens = usage.get("input_tokens", input_tokens)
                            output_tokens = usage.get("output_tokens", output_tokens)
                        elif name == "content_block_start":
                            block = event.get("content_block") or {}
                            if block.get("type") == "tool_use":
                                calls[event.get("index", 0)] = {
                                    "id": block.get("id", ""),
                                    "name": block.get("name", ""),
                                    "args": [],
                                }
                        elif name == "content_block_delta":
                            delta = event.get("delta") or {}
                            if delta.get("type") == "text_delta" and delta.get("text"):
                                texts.append(delta["text"])
                            elif delta.get("type") == "input_json_delta":
                                call = calls.get(event.get("index", 0))
                                if call is not None:
                                    call["args"].append(delta.get("partial_json") or "")
                        elif name == "message_delta":
                            usage = event.get("usage") or {}
                            output_tokens = usage.get("output_tokens", output_tokens)
                            if usage.get("input_tokens") is not None:
                                input_tokens = usage["input_tokens"]
                            stop = (event.get("delta") or {}).get("stop_reason")
                            finish_reason = stop or finish_reason
                    for index, text in enumerate(texts):
                        yield TextDelta(text, more=index < len(texts) - 1)
        except _SDK_ERRORS as exc:
            raise map_anthropic_error(exc) from None
        except ValueError:
            raise ProviderError(
                "unavailable", "The model provider sent a malformed stream."
            ) from None
        for _, call in sorted(calls.items()):
            yield ToolCall(call["id"], call["name"], parse_tool_arguments("".join(call["args"])))
        yield StreamEnd(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=_finish(finish_reason),
            model=model,
        )


def _finish(stop_reason: str) -> str:
    # One finish reason for "waiting for tool results" across providers.
    return TOOL_CALLS_FINISH if stop_reason == "tool_use" else stop_reason


def _messages(turns: list[Turn]) -> list[dict[str, Any]]:
    """Turns in messages-API shape: tool calls as `tool_use` blocks of the assistant, results
    as `tool_result` blocks of one user message (consecutive results share it)."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role == "system":
            continue
        if turn.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": turn.tool_call_id,
                "content": turn.content,
            }
            last = messages[-1] if messages else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
        elif turn.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": turn.content}] if turn.content else []
            )
            blocks += [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                for call in turn.tool_calls
            ]
            messages.append({"role": "assistant", "content": blocks})
        else:
            messages.append({"role": turn.role, "content": turn.content})
    return messages
