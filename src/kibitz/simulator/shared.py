"""What both wire formats share: the simulator's state, recorded requests, the streamed
response that can cut or stall, tokens on the behaviour's clock, and small helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from kibitz.kit.http.event_stream import client_gone, until_first
from kibitz.kit.http.sse import encode_event
from kibitz.simulator.behaviour import (
    Behaviour,
    FaultQueue,
    ScriptedToolCall,
    scripted_tool_calls,
)
from kibitz.simulator.config import SimulatorSettings

ABORT = object()
STALL = object()
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
Frames = AsyncIterator[object]


class Simulator:
    """State shared by the routes: settings, recorded requests, queued faults."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.recorder = Recorder(settings.max_recorded_requests)
        self.faults = FaultQueue()

    # The /_sim controls: what was received, and faults queued for the next requests.

    async def recorded(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.recorder.items.clear()
            return Response(status_code=204)
        return JSONResponse({"items": list(self.recorder.items)})

    async def queue_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return Response(status_code=204)
        body = json_or_none(await request.body())
        try:
            assert isinstance(body, dict)
            self.faults.push(str(body["fault"]), int(body.get("times", 1)))
        except (AssertionError, KeyError, ValueError, TypeError):
            return JSONResponse({"detail": "body must be {fault, times?}"}, status_code=400)
        return JSONResponse({"queued": list(self.faults.queued)})


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
        self.init_headers(SSE_HEADERS)
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
            if frame is ABORT:
                # Returning without the final body message makes uvicorn drop the connection.
                self.record["outcome"] = "disconnected_by_fault"
                return
            if frame is STALL:
                self.record["outcome"] = "stalled"
                await asyncio.Event().wait()
            assert isinstance(frame, bytes)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.record["outcome"] = "completed"


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def tokens_on_clock(
    behaviour: Behaviour, tokens: list[str], record: dict[str, Any]
) -> AsyncIterator[object]:
    """Yield tokens on the behaviour's clock, or the abort/stall sentinel its fault asks for."""
    await pause(behaviour.ttft_seconds)
    fault = behaviour.fault
    for index, token in enumerate(tokens):
        if (
            fault is not None
            and fault.kind in ("disconnect-after", "stall-after")
            and index == fault.after_tokens
        ):
            yield ABORT if fault.kind == "disconnect-after" else STALL
            return
        if index:
            await pause(behaviour.gap_seconds)
        record["tokens_sent"] = index + 1
        yield token


def text_of(content: Any) -> str:
    """Text of a message content: a string or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def sse(data: Any, event: str | None = None) -> bytes:
    return encode_event(json.dumps(data, separators=(",", ":")), event=event or None)


async def whole_answer(
    request: Request,
    behaviour: Behaviour,
    tokens: list[str],
    record: dict[str, Any],
    shape: Callable[[str], dict[str, Any]],
) -> Response:
    fault = behaviour.fault
    if fault is not None and fault.kind in ("disconnect-after", "stall-after"):
        # Not streamed: the whole answer is lost either way.
        return SimulatedStream(abort_or_stall(fault.kind), record)

    async def thought() -> bool:
        await pause(behaviour.ttft_seconds + behaviour.gap_seconds * max(0, len(tokens) - 1))
        return True

    if await until_first(thought(), client_gone(request.receive)) is None:
        record["outcome"] = "client_disconnected"
        return Response(status_code=499)
    record["tokens_sent"] = len(tokens)
    record["outcome"] = "completed"
    return JSONResponse(shape("".join(tokens)))


def declared_calls(request: Request, last_user: str, declared: list[str]) -> list[ScriptedToolCall]:
    """The scripted tool calls, each of a tool the request declares (ValueError otherwise)."""
    calls = scripted_tool_calls(request.headers, last_user)
    for call in calls:
        if call.name not in declared:
            raise ValueError(f"tool {call.name!r} is not among the request's tools")
    return calls


def pieces(text: str, size: int = 8) -> list[str]:
    """Arguments JSON cut into pieces, as a model streams it."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def abort_or_stall(kind: str) -> AsyncIterator[object]:
    yield ABORT if kind == "disconnect-after" else STALL


def limit_tokens(tokens: list[str], max_tokens: Any, cut_reason: str) -> tuple[list[str], str]:
    if isinstance(max_tokens, int) and 0 < max_tokens < len(tokens):
        return tokens[:max_tokens], cut_reason
    return tokens, "stop"


def json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def status_fault(behaviour: Behaviour) -> int | None:
    fault = behaviour.fault
    return int(fault.kind) if fault is not None and fault.kind.isdigit() else None


def retry_headers(status: int) -> dict[str, str]:
    return {"retry-after-ms": "50", "retry-after": "0"} if status in (429, 503) else {}
