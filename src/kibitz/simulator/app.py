"""The simulator's HTTP app: OpenAI chat completions, Anthropic messages, and `/_sim` controls."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import struct
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kibitz.kit.http.event_stream import client_gone, until_first
from kibitz.kit.http.sse import encode_event
from kibitz.simulator.behaviour import (
    Behaviour,
    FaultQueue,
    ScriptedToolCall,
    count_tokens,
    default_reply,
    resolve,
    scripted_tool_calls,
    tool_results_reply,
)
from kibitz.simulator.config import SimulatorSettings

_ABORT = object()
_STALL = object()
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
Frames = AsyncIterator[object]


class Recorder:
    """The last requests received, with what became of each (for tests to inspect)."""

    def __init__(self, limit: int) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=limit)
        self._next_id = 0

    def add(self, *, api: str, request: Request, body: Any) -> dict[str, Any]:
        """Remember a request; the returned record is updated as the answer progresses."""
        self._next_id += 1
        record: dict[str, Any] = {
            "id": self._next_id,
            "api": api,
            "path": request.url.path,
            "received_at": time.time(),
            "headers": dict(request.headers),
            "body": body,
            "outcome": "pending",
            "tokens_sent": 0,
        }
        self.items.append(record)
        return record


class SimulatedStream(Response):
    """Streams frames; can cut the connection or stall; notices a client that goes away."""

    def __init__(
        self, frames: Frames | None, record: dict[str, Any], status_code: int = 200
    ) -> None:
        self.frames = frames
        self.record = record
        self.status_code = status_code
        self.background = None
        self.init_headers(_SSE_HEADERS)
        self.raw_headers.append((b"content-type", b"text/event-stream; charset=utf-8"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def streamed() -> bool:
            await self._stream(send)
            return True

        with contextlib.suppress(Exception):
            if await until_first(streamed(), client_gone(receive)) is None:
                self.record["outcome"] = "client_disconnected"

    async def _stream(self, send: Send) -> None:
        if self.frames is None:  # hang: never answer
            self.record["outcome"] = "hung"
            await asyncio.Event().wait()
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for frame in self.frames:
            if frame is _ABORT:
                # Returning without the final body message makes uvicorn drop the connection.
                self.record["outcome"] = "disconnected_by_fault"
                return
            if frame is _STALL:
                self.record["outcome"] = "stalled"
                await asyncio.Event().wait()
            assert isinstance(frame, bytes)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.record["outcome"] = "completed"


async def _pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _tokens(
    behaviour: Behaviour, tokens: list[str], record: dict[str, Any]
) -> AsyncIterator[object]:
    """Yield tokens on the behaviour's clock, or the abort/stall sentinel its fault asks for."""
    await _pause(behaviour.ttft_seconds)
    fault = behaviour.fault
    for index, token in enumerate(tokens):
        if (
            fault is not None
            and fault.kind in ("disconnect-after", "stall-after")
            and index == fault.after_tokens
        ):
            yield _ABORT if fault.kind == "disconnect-after" else _STALL
            return
        if index:
            await _pause(behaviour.gap_seconds)
        record["tokens_sent"] = index + 1
        yield token


def _text_of(content: Any) -> str:
    """Text of a message content: a string or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _sse(data: Any, event: str | None = None) -> bytes:
    return encode_event(json.dumps(data, separators=(",", ":")), event=event or None)


class Simulator:
    """State shared by the routes: settings, recorded requests, queued faults."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.recorder = Recorder(settings.max_recorded_requests)
        self.faults = FaultQueue()

    # OpenAI ---------------------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        body = _json_or_none(raw)
        record = self.recorder.add(api="openai", request=request, body=body)
        if (
            not isinstance(body, dict)
            or not body.get("model")
            or not isinstance(body.get("messages"), list)
        ):
            return _openai_error(
                400, "invalid_request_error", "model and messages are required", record
            )
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return _openai_error(
                401, "invalid_request_error", "You didn't provide an API key.", record
            )
        messages = body["messages"]
        system = " ".join(
            _text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
        users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        last_user = users[-1] if users else ""
        results = _openai_tool_results(messages)
        reply = (
            tool_results_reply(results)
            if results
            else default_reply(
                model=body["model"],
                temperature=body.get("temperature"),
                system=system,
                last_user=last_user,
            )
        )
        declared = [
            str((tool.get("function") or {}).get("name"))
            for tool in body.get("tools") or ()
            if isinstance(tool, dict)
        ]
        try:
            calls = [] if results else _declared(request, last_user, declared)
        except ValueError as exc:
            return _openai_error(400, "invalid_request_error", str(exc), record)
        behaviour = resolve(
            settings=self.settings,
            headers=request.headers,
            last_user=last_user,
            reply=reply,
            body=raw,
            faults=self.faults,
        )
        if (error := _openai_fault(behaviour, record)) is not None:
            return error
        tokens, finish = _limit(
            behaviour.tokens, body.get("max_completion_tokens") or body.get("max_tokens"), "length"
        )
        usage_in = sum(count_tokens(_text_of(m.get("content"))) for m in messages)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        model = str(body["model"])
        usage = {
            "prompt_tokens": usage_in,
            "completion_tokens": len(tokens),
            "total_tokens": usage_in + len(tokens),
        }
        if behaviour.fault is not None and behaviour.fault.kind == "hang":
            return SimulatedStream(None, record)
        if calls:
            return await self._openai_tool_calls(
                request, body, behaviour, record, calls, completion_id, usage_in
            )
        if not body.get("stream"):
            return await self._whole(
                request,
                behaviour,
                tokens,
                record,
                lambda text: {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_sim",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                },
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_sim",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            return _sse(data)

        async def frames() -> AsyncIterator[object]:
            first = True
            async for token in _tokens(behaviour, tokens, record):
                if not isinstance(token, str):
                    yield token
                    return
                delta = {"role": "assistant", "content": token} if first else {"content": token}
                first = False
                yield chunk(delta, None)
            yield chunk({}, finish)
            if include_usage:
                yield _sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_sim",
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield encode_event("[DONE]")

        return SimulatedStream(frames(), record)

    # Anthropic ------------------------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        raw = await request.body()
        body = _json_or_none(raw)
        record = self.recorder.add(api="anthropic", request=request, body=body)
        if (
            not isinstance(body, dict)
            or not body.get("model")
            or not isinstance(body.get("messages"), list)
            or not isinstance(body.get("max_tokens"), int)
        ):
            return _anthropic_error(
                400, "invalid_request_error", "model, messages and max_tokens are required", record
            )
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return _anthropic_error(
                401, "authentication_error", "x-api-key header is required", record
            )
        messages = body["messages"]
        system = _text_of(body.get("system") or "")
        # A user message of tool results only has no text: the question is the last with text.
        users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        last_user = next((text for text in reversed(users) if text), "")
        results = _anthropic_tool_results(messages)
        reply = (
            tool_results_reply(results)
            if results
            else default_reply(
                model=body["model"],
                temperature=body.get("temperature"),
                system=system,
                last_user=last_user,
            )
        )
        declared = [
            str(tool.get("name")) for tool in body.get("tools") or () if isinstance(tool, dict)
        ]
        try:
            calls = [] if results else _declared(request, last_user, declared)
        except ValueError as exc:
            return _anthropic_error(400, "invalid_request_error", str(exc), record)
        behaviour = resolve(
            settings=self.settings,
            headers=request.headers,
            last_user=last_user,
            reply=reply,
            body=raw,
            faults=self.faults,
        )
        if (error := _anthropic_fault(behaviour, record)) is not None:
            return error
        tokens, stop_reason = _limit(behaviour.tokens, body["max_tokens"], "max_tokens")
        stop_reason = stop_reason if stop_reason != "stop" else "end_turn"
        usage_in = count_tokens(system) + sum(
            count_tokens(_text_of(m.get("content"))) for m in messages
        )
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        model = str(body["model"])
        if behaviour.fault is not None and behaviour.fault.kind == "hang":
            return SimulatedStream(None, record)
        if calls:
            return await self._anthropic_tool_calls(
                request, body, behaviour, record, calls, message_id, usage_in
            )
        if not body.get("stream"):
            return await self._whole(
                request,
                behaviour,
                tokens,
                record,
                lambda text: {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": len(tokens)},
                },
            )

        async def frames() -> AsyncIterator[object]:
            yield _sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": usage_in, "output_tokens": 1},
                    },
                },
                "message_start",
            )
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            yield _sse({"type": "ping"}, "ping")
            async for token in _tokens(behaviour, tokens, record):
                if not isinstance(token, str):
                    yield token
                    return
                yield _sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": token},
                    },
                    "content_block_delta",
                )
            yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": len(tokens)},
                },
                "message_delta",
            )
            yield _sse({"type": "message_stop"}, "message_stop")

        return SimulatedStream(frames(), record)

    # Tool calls -----------------------------------------------------------------------------

    async def _openai_tool_calls(
        self,
        request: Request,
        body: dict[str, Any],
        behaviour: Behaviour,
        record: dict[str, Any],
        calls: list[ScriptedToolCall],
        completion_id: str,
        usage_in: int,
    ) -> Response:
        """The model stops to call tools: `tool_calls` on the message, or streamed as deltas
        (id and name first, then the arguments in pieces), finish reason `tool_calls`."""
        model, created = str(body["model"]), int(time.time())
        ids = [f"call_{uuid.uuid4().hex[:24]}" for _ in calls]
        out = sum(count_tokens(call.arguments) + 1 for call in calls)
        usage = {
            "prompt_tokens": usage_in,
            "completion_tokens": out,
            "total_tokens": usage_in + out,
        }
        head = {
            "id": completion_id,
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sim",
        }
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call_id, call in zip(ids, calls, strict=True)
                ],
            }
            choice = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
            return await self._whole(
                request,
                behaviour,
                [],
                record,
                lambda _: {
                    **head,
                    "object": "chat.completion",
                    "choices": [choice],
                    "usage": usage,
                },
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            data = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            if include_usage:
                data["usage"] = None
            return _sse(data)

        async def frames() -> AsyncIterator[object]:
            await _pause(behaviour.ttft_seconds)
            for index, (call_id, call) in enumerate(zip(ids, calls, strict=True)):
                opening = {
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                role = {"role": "assistant", "content": None} if index == 0 else {}
                yield chunk({**role, "tool_calls": [opening]}, None)
                for piece in _pieces(call.arguments):
                    await _pause(behaviour.gap_seconds)
                    record["tokens_sent"] += 1
                    yield chunk(
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None
                    )
            yield chunk({}, "tool_calls")
            if include_usage:
                yield _sse(
                    {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
            yield encode_event("[DONE]")

        return SimulatedStream(frames(), record)

    async def _anthropic_tool_calls(
        self,
        request: Request,
        body: dict[str, Any],
        behaviour: Behaviour,
        record: dict[str, Any],
        calls: list[ScriptedToolCall],
        message_id: str,
        usage_in: int,
    ) -> Response:
        """The model stops to call tools: `tool_use` blocks, or streamed as blocks whose input
        comes in `input_json_delta` pieces, stop reason `tool_use`."""
        model = str(body["model"])
        ids = [f"toolu_{uuid.uuid4().hex[:24]}" for _ in calls]
        out = sum(count_tokens(call.arguments) + 1 for call in calls)
        if not body.get("stream"):
            content = [
                {
                    "type": "tool_use",
                    "id": call_id,
                    "name": call.name,
                    "input": json.loads(call.arguments),
                }
                for call_id, call in zip(ids, calls, strict=True)
            ]
            return await self._whole(
                request,
                behaviour,
                [],
                record,
                lambda _: {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": "tool_use",
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": out},
                },
            )

        async def frames() -> AsyncIterator[object]:
            start: dict[str, Any] = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": usage_in, "output_tokens": 1},
            }
            yield _sse({"type": "message_start", "message": start}, "message_start")
            await _pause(behaviour.ttft_seconds)
            for index, (call_id, call) in enumerate(zip(ids, calls, strict=True)):
                block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
                yield _sse(
                    {"type": "content_block_start", "index": index, "content_block": block},
                    "content_block_start",
                )
                for piece in _pieces(call.arguments):
                    await _pause(behaviour.gap_seconds)
                    record["tokens_sent"] += 1
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    yield _sse(
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        "content_block_delta",
                    )
                yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
            yield _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
                "message_delta",
            )
            yield _sse({"type": "message_stop"}, "message_stop")

        return SimulatedStream(frames(), record)

    # Shared ---------------------------------------------------------------------------------

    async def _whole(
        self,
        request: Request,
        behaviour: Behaviour,
        tokens: list[str],
        record: dict[str, Any],
        shape: Callable[[str], dict[str, Any]],
    ) -> Response:
        fault = behaviour.fault
        if fault is not None and fault.kind in ("disconnect-after", "stall-after"):
            # Not streamed: the whole answer is lost either way.
            return SimulatedStream(_abort_or_stall(fault.kind), record)

        async def thought() -> bool:
            await _pause(behaviour.ttft_seconds + behaviour.gap_seconds * max(0, len(tokens) - 1))
            return True

        if await until_first(thought(), client_gone(request.receive)) is None:
            record["outcome"] = "client_disconnected"
            return Response(status_code=499)
        record["tokens_sent"] = len(tokens)
        record["outcome"] = "completed"
        return JSONResponse(shape("".join(tokens)))

    async def embeddings(self, request: Request) -> Response:
        """OpenAI's `/v1/embeddings`: a hashed bag of words per input (for plumbing tests;
        texts sharing words get close vectors), as floats or base64 as the SDK asks."""
        raw = await request.body()
        body = _json_or_none(raw)
        record = self.recorder.add(api="openai-embeddings", request=request, body=body)
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not body.get("model"):
            return _openai_error(
                400, "invalid_request_error", "model and input are required", record
            )
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return _openai_error(
                401, "invalid_request_error", "You didn't provide an API key.", record
            )
        behaviour = resolve(
            settings=self.settings,
            headers=request.headers,
            last_user="",
            reply="",
            body=raw,
            faults=self.faults,
        )
        if (error := _openai_fault(behaviour, record)) is not None:
            return error
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = _hashed_words(str(text))
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count_tokens(str(text)) for text in inputs)
        record["outcome"] = "completed"
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": str(body["model"]),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def list_models(self, _: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": "sim-model",
                        "object": "model",
                        "created": 0,
                        "owned_by": "kibitz-simulator",
                    }
                ],
            }
        )

    async def recorded(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.recorder.items.clear()
            return Response(status_code=204)
        return JSONResponse({"items": list(self.recorder.items)})

    async def queue_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return Response(status_code=204)
        body = _json_or_none(await request.body())
        try:
            assert isinstance(body, dict)
            self.faults.push(str(body["fault"]), int(body.get("times", 1)))
        except (AssertionError, KeyError, ValueError, TypeError):
            return JSONResponse({"detail": "body must be {fault, times?}"}, status_code=400)
        return JSONResponse({"queued": list(self.faults.queued)})


def _declared(request: Request, last_user: str, declared: list[str]) -> list[ScriptedToolCall]:
    """The scripted tool calls, each of a tool the request declares (ValueError otherwise)."""
    calls = scripted_tool_calls(request.headers, last_user)
    for call in calls:
        if call.name not in declared:
            raise ValueError(f"tool {call.name!r} is not among the request's tools")
    return calls


def _openai_tool_results(messages: list[Any]) -> list[tuple[str, str]]:
    """(tool_call_id, content) of the `tool` messages the conversation ends with."""
    results: list[tuple[str, str]] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.append((str(message.get("tool_call_id")), _text_of(message.get("content"))))
    return results[::-1]


def _anthropic_tool_results(messages: list[Any]) -> list[tuple[str, str]]:
    """(tool_use_id, content) of the `tool_result` blocks of the last message, if it is the
    user's."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return []
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    return [
        (str(block.get("tool_use_id")), _text_of(block.get("content")))
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def _pieces(text: str, size: int = 8) -> list[str]:
    """Arguments JSON cut into pieces, as a model streams it."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def _abort_or_stall(kind: str) -> AsyncIterator[object]:
    yield _ABORT if kind == "disconnect-after" else _STALL


def _limit(tokens: list[str], max_tokens: Any, cut_reason: str) -> tuple[list[str], str]:
    if isinstance(max_tokens, int) and 0 < max_tokens < len(tokens):
        return tokens[:max_tokens], cut_reason
    return tokens, "stop"


# Dimensions of the simulator's embeddings.
EMBEDDING_DIMENSIONS = 64


def _hashed_words(text: str) -> list[float]:
    """A unit vector counting the text's words into hashed buckets."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
        vector[bucket % EMBEDDING_DIMENSIONS] += 1.0
    norm = sum(value * value for value in vector) ** 0.5 or 1.0
    return [value / norm for value in vector]


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


_OPENAI_FAULTS = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("invalid_request_error", "Incorrect API key provided (simulated)."),
    429: ("requests", "Rate limit reached (simulated)."),
    500: ("server_error", "The server had an error (simulated)."),
    503: ("server_error", "The engine is overloaded (simulated)."),
}
_ANTHROPIC_FAULTS = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key (simulated)"),
    429: ("rate_limit_error", "Rate limited (simulated)."),
    500: ("api_error", "Internal server error (simulated)."),
    503: ("overloaded_error", "Overloaded (simulated)."),
}


def _status_fault(behaviour: Behaviour) -> int | None:
    fault = behaviour.fault
    return int(fault.kind) if fault is not None and fault.kind.isdigit() else None


def _retry_headers(status: int) -> dict[str, str]:
    return {"retry-after-ms": "50", "retry-after": "0"} if status in (429, 503) else {}


def _openai_error(status: int, kind: str, message: str, record: dict[str, Any]) -> Response:
    record["outcome"] = f"error:{status}"
    code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=_retry_headers(status))


def _anthropic_error(status: int, kind: str, message: str, record: dict[str, Any]) -> Response:
    record["outcome"] = f"error:{status}"
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=_retry_headers(status))


def _openai_fault(behaviour: Behaviour, record: dict[str, Any]) -> Response | None:
    status = _status_fault(behaviour)
    if status is None:
        return None
    kind, message = _OPENAI_FAULTS[status]
    return _openai_error(status, kind, message, record)


def _anthropic_fault(behaviour: Behaviour, record: dict[str, Any]) -> Response | None:
    status = _status_fault(behaviour)
    if status is None:
        return None
    kind, message = _ANTHROPIC_FAULTS[status]
    return _anthropic_error(status, kind, message, record)


def create_app(settings: SimulatorSettings | None = None) -> Starlette:
    """The simulator as an ASGI app."""
    simulator = Simulator(settings or SimulatorSettings())

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", simulator.chat_completions, methods=["POST"]),
        Route("/v1/messages", simulator.messages, methods=["POST"]),
        Route("/v1/models", simulator.list_models, methods=["GET"]),
        Route("/v1/embeddings", simulator.embeddings, methods=["POST"]),
        Route("/_sim/requests", simulator.recorded, methods=["GET", "DELETE"]),
        Route("/_sim/faults", simulator.queue_faults, methods=["POST", "DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = simulator
    return app
