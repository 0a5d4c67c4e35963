"""OpenAI's wire format: `/v1/chat/completions` (whole, streamed, tool calls), `/v1/embeddings`
and `/v1/models`."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kibitz.kit.http.sse import encode_event
from kibitz.simulator.behaviour import (
    Behaviour,
    ScriptedToolCall,
    count_tokens,
    default_reply,
    resolve,
    tool_results_reply,
)
from kibitz.simulator.shared import (
    SimulatedStream,
    Simulator,
    declared_calls,
    json_or_none,
    limit_tokens,
    pause,
    pieces,
    retry_headers,
    sse,
    status_fault,
    text_of,
    tokens_on_clock,
    whole_answer,
)


async def chat_completions(sim: Simulator, request: Request) -> Response:
    raw = await request.body()
    body = json_or_none(raw)
    record = sim.recorder.add(api="openai", request=request, body=body)
    if (
        not isinstance(body, dict)
        or not body.get("model")
        or not isinstance(body.get("messages"), list)
    ):
        return _openai_error(
            400, "invalid_request_error", "model and messages are required", record
        )
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return _openai_error(401, "invalid_request_error", "You didn't provide an API key.", record)
    messages = body["messages"]
    system = " ".join(
        text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
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
        calls = [] if results else declared_calls(request, last_user, declared)
    except ValueError as exc:
        return _openai_error(400, "invalid_request_error", str(exc), record)
    behaviour = resolve(
        settings=sim.settings,
        headers=request.headers,
        last_user=last_user,
        reply=reply,
        body=raw,
        faults=sim.faults,
    )
    if (error := _openai_fault(behaviour, record)) is not None:
        return error
    tokens, finish = limit_tokens(
        behaviour.tokens, body.get("max_completion_tokens") or body.get("max_tokens"), "length"
    )
    usage_in = sum(count_tokens(text_of(m.get("content"))) for m in messages)
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
        return await _tool_calls(
            sim, request, body, behaviour, record, calls, completion_id, usage_in
        )
    if not body.get("stream"):
        return await whole_answer(
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
        return sse(data)

    async def frames() -> AsyncIterator[object]:
        first = True
        async for token in tokens_on_clock(behaviour, tokens, record):
            if not isinstance(token, str):
                yield token
                return
            delta = {"role": "assistant", "content": token} if first else {"content": token}
            first = False
            yield chunk(delta, None)
        yield chunk({}, finish)
        if include_usage:
            yield sse(
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


async def _tool_calls(
    sim: Simulator,
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
        return await whole_answer(
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
        return sse(data)

    async def frames() -> AsyncIterator[object]:
        await pause(behaviour.ttft_seconds)
        for index, (call_id, call) in enumerate(zip(ids, calls, strict=True)):
            opening = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            role = {"role": "assistant", "content": None} if index == 0 else {}
            yield chunk({**role, "tool_calls": [opening]}, None)
            for piece in pieces(call.arguments):
                await pause(behaviour.gap_seconds)
                record["tokens_sent"] += 1
                yield chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None
                )
        yield chunk({}, "tool_calls")
        if include_usage:
            yield sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield encode_event("[DONE]")

    return SimulatedStream(frames(), record)


async def embeddings(sim: Simulator, request: Request) -> Response:
    """OpenAI's `/v1/embeddings`: a hashed bag of words per input (for plumbing tests;
    texts sharing words get close vectors), as floats or base64 as the SDK asks."""
    raw = await request.body()
    body = json_or_none(raw)
    record = sim.recorder.add(api="openai-embeddings", request=request, body=body)
    inputs = body.get("input") if isinstance(body, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not body.get("model"):
        return _openai_error(400, "invalid_request_error", "model and input are required", record)
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return _openai_error(401, "invalid_request_error", "You didn't provide an API key.", record)
    behaviour = resolve(
        settings=sim.settings,
        headers=request.headers,
        last_user="",
        reply="",
        body=raw,
        faults=sim.faults,
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


async def list_models(sim: Simulator, _: Request) -> Response:
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


def _openai_tool_results(messages: list[Any]) -> list[tuple[str, str]]:
    """(tool_call_id, content) of the `tool` messages the conversation ends with."""
    results: list[tuple[str, str]] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.append((str(message.get("tool_call_id")), text_of(message.get("content"))))
    return results[::-1]


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


_OPENAI_FAULTS = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("invalid_request_error", "Incorrect API key provided (simulated)."),
    429: ("requests", "Rate limit reached (simulated)."),
    500: ("server_error", "The server had an error (simulated)."),
    503: ("server_error", "The engine is overloaded (simulated)."),
}


def _openai_error(status: int, kind: str, message: str, record: dict[str, Any]) -> Response:
    record["outcome"] = f"error:{status}"
    code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=retry_headers(status))


def _openai_fault(behaviour: Behaviour, record: dict[str, Any]) -> Response | None:
    status = status_fault(behaviour)
    if status is None:
        return None
    kind, message = _OPENAI_FAULTS[status]
    return _openai_error(status, kind, message, record)
