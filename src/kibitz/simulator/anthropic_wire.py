"""Anthropic's wire format: `/v1/messages` (whole, streamed, tool use)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


async def messages(sim: Simulator, request: Request) -> Response:
    raw = await request.body()
    body = json_or_none(raw)
    record = sim.recorder.add(api="anthropic", request=request, body=body)
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
        return _anthropic_error(401, "authentication_error", "x-api-key header is required", record)
    messages = body["messages"]
    system = text_of(body.get("system") or "")
    # A user message of tool results only has no text: the question is the last with text.
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
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
    declared = [str(tool.get("name")) for tool in body.get("tools") or () if isinstance(tool, dict)]
    try:
        calls = [] if results else declared_calls(request, last_user, declared)
    except ValueError as exc:
        return _anthropic_error(400, "invalid_request_error", str(exc), record)
    behaviour = resolve(
        settings=sim.settings,
        headers=request.headers,
        last_user=last_user,
        reply=reply,
        body=raw,
        faults=sim.faults,
    )
    if (error := _anthropic_fault(behaviour, record)) is not None:
        return error
    tokens, stop_reason = limit_tokens(behaviour.tokens, body["max_tokens"], "max_tokens")
    stop_reason = stop_reason if stop_reason != "stop" else "end_turn"
    usage_in = count_tokens(system) + sum(count_tokens(text_of(m.get("content"))) for m in messages)
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    model = str(body["model"])
    if behaviour.fault is not None and behaviour.fault.kind == "hang":
        return SimulatedStream(None, record)
    if calls:
        return await _tool_calls(sim, request, body, behaviour, record, calls, message_id, usage_in)
    if not body.get("stream"):
        return await whole_answer(
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
        yield sse(
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
        yield sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        )
        yield sse({"type": "ping"}, "ping")
        async for token in tokens_on_clock(behaviour, tokens, record):
            if not isinstance(token, str):
                yield token
                return
            yield sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": token},
                },
                "content_block_delta",
            )
        yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        yield sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": len(tokens)},
            },
            "message_delta",
        )
        yield sse({"type": "message_stop"}, "message_stop")

    return SimulatedStream(frames(), record)


async def _tool_calls(
    sim: Simulator,
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
        return await whole_answer(
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
        yield sse({"type": "message_start", "message": start}, "message_start")
        await pause(behaviour.ttft_seconds)
        for index, (call_id, call) in enumerate(zip(ids, calls, strict=True)):
            block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            yield sse(
                {"type": "content_block_start", "index": index, "content_block": block},
                "content_block_start",
            )
            for piece in pieces(call.arguments):
                await pause(behaviour.gap_seconds)
                record["tokens_sent"] += 1
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield sse(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
            yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        yield sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": out},
            },
            "message_delta",
        )
        yield sse({"type": "message_stop"}, "message_stop")

    return SimulatedStream(frames(), record)


def _anthropic_tool_results(messages: list[Any]) -> list[tuple[str, str]]:
    """(tool_use_id, content) of the `tool_result` blocks of the last message, if it is the
    user's."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "user":
        return []
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    return [
        (str(block.get("tool_use_id")), text_of(block.get("content")))
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


_ANTHROPIC_FAULTS = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key (simulated)"),
    429: ("rate_limit_error", "Rate limited (simulated)."),
    500: ("api_error", "Internal server error (simulated)."),
    503: ("overloaded_error", "Overloaded (simulated)."),
}


def _anthropic_error(status: int, kind: str, message: str, record: dict[str, Any]) -> Response:
    record["outcome"] = f"error:{status}"
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=retry_headers(status))


def _anthropic_fault(behaviour: Behaviour, record: dict[str, Any]) -> Response | None:
    status = status_fault(behaviour)
    if status is None:
        return None
    kind, message = _ANTHROPIC_FAULTS[status]
    return _anthropic_error(status, kind, message, record)
