"""What the tracing seams cost per request, off (the default) and on, without the network.

    .venv/bin/python bench/tracing_overhead.py [--requests 20000] [--rounds 3]

Drives the server seam (`RequestContextMiddleware` in front of an ASGI app that answers at once)
with in-memory ASGI messages, and calls the client, bus and provider seams directly: first with
tracing off, then on (spans made and dropped by an exporter that keeps nothing, so the figure is
the SDK's cost, not an exporter's). Prints CPU µs per call, the best of `--rounds`. Off, each
seam is one module-global read; `bench/chat_stream.py` run against the commit before shows the
stack's figures unchanged (README, Traces).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kibitz.kit.events.bus import EventEnvelope, RetryPolicy, deliver_with_retry
from kibitz.kit.observability import RequestContextMiddleware
from kibitz.kit.tracing import (
    client_span,
    configure_tracing,
    model_call_span,
    producer_headers,
    shutdown_tracing,
)


class _Dropped(SpanExporter):
    """Keeps nothing: the SDK's cost alone."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}", "more_body": False})


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/chat/send",
        "headers": [
            (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            (b"x-request-id", b"bench"),
            (b"content-type", b"application/json"),
        ],
    }


async def _server(requests: int) -> float:
    middleware = RequestContextMiddleware(_answer, service="bench")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        await middleware(_scope(), receive, send)
    return (time.process_time() - started) / requests * 1e6


async def _client_bus_provider(requests: int) -> float:
    envelope = EventEnvelope(name="chat.message_completed", payload={})
    policy = RetryPolicy()

    async def handler(_: EventEnvelope) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        span = client_span("POST", "/agents/respond", peer="agents")
        if span is not None:
            span.end(status=200)
        envelope.headers = producer_headers(envelope.name, message_id=uuid.uuid4())
        await deliver_with_retry(
            envelope, group="bench", handler=handler, dead_letter=None, policy=policy
        )
        model = model_call_span(provider="openai", model="gpt-4o-mini", plan="basic")
        if model is not None:
            model.first_chunk(0.05)
            model.end(outcome="completed")
    return (time.process_time() - started) / requests * 1e6


def _best(rounds: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The request log line is not what is measured.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    figures: dict[str, tuple[float, float]] = {}
    for state in ("off", "on"):
        if state == "on":
            configure_tracing("bench", exporter=_Dropped())
        server = _best(args.rounds, lambda: asyncio.run(_server(args.requests)))
        rest = _best(args.rounds, lambda: asyncio.run(_client_bus_provider(args.requests)))
        figures[state] = (server, rest)
    shutdown_tracing()
    print("CPU µs per call, best of", args.rounds, "rounds of", args.requests)
    print(f"{'seam':<44}{'off':>8}{'on':>8}")
    print(f"{'server (RequestContextMiddleware, one request)':<44}", end="")
    print(f"{figures['off'][0]:>8.1f}{figures['on'][0]:>8.1f}")
    print(f"{'client + producer + consumer + model call':<44}", end="")
    print(f"{figures['off'][1]:>8.1f}{figures['on'][1]:>8.1f}")


if __name__ == "__main__":
    main()
