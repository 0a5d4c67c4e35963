"""Structured JSON logs carrying the request id, and Prometheus metrics shared by every app."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kibitz.kit.tracing import TRACEPARENT, TRACESTATE, active_tracer, server_span

REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID_LENGTH = 128

HTTP_REQUESTS = Counter(
    "kibitz_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "kibitz_http_request_duration_seconds",
    "Time to the response head, by route",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_ERRORS = Counter(
    "kibitz_http_errors_total", "Responses with status >= 500", ["service", "route"]
)
OPEN_STREAMS = Gauge("kibitz_open_streams", "Streaming responses in flight", ["service"])
# Loggers whose INFO lines only say that things start as they should.
_START_UP_CHATTER = ("alembic", "uvicorn.error", "httpx", "kibitz.runtime")


def logs_as_json(json: bool | None) -> bool:
    """JSON when asked, or when nobody reads stderr at a terminal (a container, a file, a pipe)."""
    return json if json is not None else not sys.stderr.isatty()


def configure_logging(*, level: str = "INFO", json: bool | None = True) -> None:
    """Route stdlib and structlog output through one JSON (or, for people, console) renderer
    (`json=None`: JSON unless stderr is a terminal)."""
    json = logs_as_json(json)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        # filter_by_level first: a message below the level costs a level check, not a timestamp.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates ours, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # A person at a terminal reads the start-up summary, not ~40 lines of each module's server
    # starting, each migration applied and each health check's HTTP call (still there at DEBUG,
    # and always in JSON logs).
    chatter = logging.WARNING if not json and root.level >= logging.INFO else logging.NOTSET
    for name in _START_UP_CHATTER:
        logging.getLogger(name).setLevel(chatter)


def _clean_request_id(raw: str | None) -> str:
    if raw and len(raw) <= _MAX_REQUEST_ID_LENGTH and raw.isprintable():
        return raw
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Keeps or makes `X-Request-ID`, binds it to logs, records request metrics and, when
    tracing is on, runs the request in a server span continuing the caller's trace (the one
    server seam of `kit/tracing.py`: FastAPI routes, fast routes and the gateway's API path all
    pass here). `continue_traces` off (the gateway): a public caller's trace context is ignored.

    Pure ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, service: str, continue_traces: bool = True) -> None:
        self.app = app
        self.service = service
        self.continue_traces = continue_traces
        self.log = structlog.get_logger("kibitz.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(REQUEST_ID_HEADER.encode())
        request_id = _clean_request_id(raw.decode("latin-1") if raw else None)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id, service=self.service)
        started = time.perf_counter()
        status_code = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                head = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                head.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = head
                self._record(scope, status_code, time.perf_counter() - started)
            await send(message)

        try:
            if active_tracer() is None:
                await self.app(scope, receive, send_with_request_id)
            else:
                await self._traced(scope, receive, send_with_request_id, headers, request_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "service")

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        request_id: str,
    ) -> None:
        """The request in a server span (tracing on), its trace id in the logs."""
        carrier: dict[str, str] = {}
        if self.continue_traces:
            for name in (TRACEPARENT, TRACESTATE):
                value = headers.get(name.encode())
                if value is not None:
                    carrier[name] = value.decode("latin-1")
        with server_span(scope, self.service, carrier, request_id) as span:
            structlog.contextvars.bind_contextvars(trace_id=span.trace_id)

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.answered(scope, message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                structlog.contextvars.unbind_contextvars("trace_id")

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "WS")
        HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
        HTTP_LATENCY.labels(self.service, method, route).observe(seconds)
        if status >= 500:
            HTTP_ERRORS.labels(self.service, route).inc()
        path = str(scope.get("path", ""))
        # Service-to-service calls and health probes (polls, most of them) are machine
        # chatter: debug, not info.
        chatter = "/internal/" in path or path in ("/healthz", "/readyz")
        write = self.log.debug if chatter else self.log.info
        write(
            "request",
            method=method,
            path=path,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )


def request_id_of(request: Request) -> str:
    """The request id the middleware kept or made."""
    return str(getattr(request.state, "request_id", "")) or uuid.uuid4().hex


async def metrics_endpoint(_: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
