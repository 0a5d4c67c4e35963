"""OpenTelemetry traces: one trace per request, from the gateway through every service call, the
bus and the provider call (W3C `traceparent`/`tracestate` between processes).

Off unless an OTLP endpoint is configured (`KIBITZ_OTLP_ENDPOINT`, or OpenTelemetry's own
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED=true`
wins). Off, every seam reads one module global and takes its old path: no span, no context
lookup, no header (`bench/tracing_overhead.py` measures the seams both ways).

The seams, each the one place its kind of hop is traced:
- server: `RequestContextMiddleware` (FastAPI routes, `@fast_route`s and the gateway's API path
  all pass through it) continues the caller's trace;
- client: `ServiceClient` and the gateway's proxy open a client span and send its `traceparent`;
- bus: `Outbox.add` writes the producer's context into the envelope's `headers`, and
  `deliver_with_retry` runs the handler in a consumer span continuing it;
- provider: agents' `reply_stream` (model, tokens, time to first token as attributes);
- jobs: a job's payload carries `trace_headers()`, and the worker that claims it runs the job
  in `continued_span(...)`, exactly as a bus consumer does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# The headers trace context travels in; the gateway never takes them from the public side.
TRACE_HEADERS = frozenset({TRACEPARENT.encode(), TRACESTATE.encode()})
_PROPAGATOR = TraceContextTextMapPropagator()
_INSTRUMENTATION = "kibitz"

# None: tracing is off and every seam takes its untraced path.
_tracer: Tracer | None = None
_provider: Any = None


def active_tracer() -> Tracer | None:
    """The tracer when tracing is on, else None (the seams' one check)."""
    return _tracer


def otlp_endpoint(configured: str | None) -> str | None:
    """Where spans go: kibitz's setting, else OpenTelemetry's own variables; None means off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return (
        configured
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or None
    )


def configure_tracing(
    service_name: str, *, endpoint: str | None = None, exporter: Any = None
) -> bool:
    """Turn tracing on for this process when an endpoint (or, in tests, an exporter) is given;
    whether it is on. Spans go out in batches from a background thread (OTLP over HTTP)."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    if exporter is None and otlp_endpoint(endpoint) is None:
        return False
    # Imported only when on: the SDK and the exporter cost start-up time nobody else pays.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": service_name, "service.namespace": "kibitz"})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        # A test's in-memory exporter sees each span as soon as it ends.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # kibitz's setting is a base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT (the traces path
        # is added); without it the exporter reads OpenTelemetry's variables by their own rules.
        url = f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _provider = provider
    _tracer = provider.get_tracer(_INSTRUMENTATION)
    return True


def shutdown_tracing() -> None:
    """Send the spans still buffered and turn tracing off (at process exit, and in tests)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context a `traceparent` (and `tracestate`) carrier names."""
    return _PROPAGATOR.extract(carrier)


def headers_of(span: Span) -> dict[str, str]:
    """`traceparent` (and `tracestate`) naming `span` as the parent of what the receiver does."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def raw_headers_of(span: Span) -> list[tuple[bytes, bytes]]:
    """`headers_of` as raw HTTP header pairs."""
    return [(name.encode(), value.encode()) for name, value in headers_of(span).items()]


def trace_headers() -> dict[str, str]:
    """The current trace context as a carrier, for a job payload or a message; {} when off."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def producer_headers(name: str, *, message_id: object) -> dict[str, str]:
    """A producer span for a message about to be sent (ended at once: the send itself happens
    later, from the outbox) and its trace context for the message; {} when off."""
    tracer = _tracer
    if tracer is None:
        return {}
    attributes = {"messaging.destination.name": name, "messaging.message.id": str(message_id)}
    span = tracer.start_span(f"publish {name}", kind=SpanKind.PRODUCER, attributes=attributes)
    span.end()
    return headers_of(span)


@contextmanager
def continued_span(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """Run the block in a span continuing the trace `carrier` names (a bus event's headers, a
    job's payload), current for what the block calls; yields None when tracing is off."""
    tracer = _tracer
    if tracer is None:
        yield None
        return
    parent = extract(carrier) if carrier else None
    # Exceptions are marked by type only (`fail`): their text may hold what logs never show.
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            fail(span, error)
            raise


def fail(span: Span, error: BaseException | str) -> None:
    """Mark a span failed (the exception's type only: its text may hold what logs never show)."""
    description = error if isinstance(error, str) else type(error).__name__
    span.set_status(Status(StatusCode.ERROR, description))


class ServerSpan:
    """The span of one request a service answers, named after its route once it is known."""

    def __init__(self, span: Span, method: str) -> None:
        self.span = span
        self._method = method

    @property
    def trace_id(self) -> str:
        """The trace's id as logs carry it (32 hex digits)."""
        return format(self.span.get_span_context().trace_id, "032x")

    def answered(self, scope: Mapping[str, Any], status: int) -> None:
        """The response head is going out: the route (known by now) and the status."""
        route = getattr(scope.get("route"), "path", None)
        if route:
            self.span.update_name(f"{self._method} {route}")
            self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))


@contextmanager
def server_span(
    scope: Mapping[str, Any], service: str, carrier: Mapping[str, str], request_id: str
) -> Iterator[ServerSpan]:
    """A server span for one request (current while it is answered), continuing `carrier`."""
    tracer = _tracer
    assert tracer is not None, "tracing is off"
    method = str(scope.get("method", "WS"))
    attributes = {
        "kibitz.service": service,
        "kibitz.request_id": request_id,
        "http.request.method": method,
        "url.path": str(scope.get("path", "")),
    }
    with continued_span(method, carrier, kind=SpanKind.SERVER, attributes=attributes) as span:
        assert span is not None
        yield ServerSpan(span, method)


class ClientSpan:
    """The span of one call to another kibitz process; `headers` carry it to the callee."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.headers = raw_headers_of(span)

    def end(self, *, status: int | None = None, error: BaseException | None = None) -> None:
        """The call is over: answered with `status`, or broken by `error`."""
        if status is not None:
            self.span.set_attribute("http.response.status_code", status)
            if status >= 500:
                self.span.set_status(Status(StatusCode.ERROR))
        if error is not None:
            fail(self.span, error)
        self.span.end()


def client_span(method: str, path: str, *, peer: str) -> ClientSpan | None:
    """A client span for a call to the `peer` service, child of the current span; None when
    tracing is off. Not made current: what the caller does meanwhile is not part of the call."""
    tracer = _tracer
    if tracer is None:
        return None
    span = tracer.start_span(
        f"{method} {peer}",
        kind=SpanKind.CLIENT,
        attributes={"kibitz.peer.service": peer, "http.request.method": method, "url.path": path},
    )
    return ClientSpan(span)


class ModelCallSpan:
    """A call to a model provider, with OpenTelemetry's GenAI attributes: model, tokens, time to
    the first chunk (seconds), why it stopped."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def first_chunk(self, seconds: float) -> None:
        """The first piece of the answer arrived `seconds` after the call began."""
        self.span.set_attribute("gen_ai.response.time_to_first_chunk", seconds)

    def retried(self, kind: str) -> None:
        """An attempt failed before its first token and is tried again."""
        self.span.add_event("retry", {"error.type": kind})

    def finished(
        self, *, input_tokens: int, output_tokens: int, model: str, finish_reason: str
    ) -> None:
        """The answer is whole: its usage and stop reason."""
        self.span.set_attributes(
            {
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.response.model": model,
                "gen_ai.response.finish_reasons": [finish_reason],
            }
        )

    def end(self, *, outcome: str, error_kind: str | None = None) -> None:
        """The call is over (`completed`, `cancelled` or `error` of `error_kind`)."""
        self.span.set_attribute("kibitz.outcome", outcome)
        if error_kind is not None:
            self.span.set_attribute("error.type", error_kind)
            fail(self.span, error_kind)
        self.span.end()


def model_call_span(*, provider: str, model: str, plan: str) -> ModelCallSpan | None:
    """A client span for one model call, child of the current span; None when tracing is off."""
    tracer = _tracer
    if tracer is None:
        return None
    span = tracer.start_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "kibitz.plan": plan,
        },
    )
    return ModelCallSpan(span)


@contextmanager
def tracing_for(service_name: str, *, endpoint: str | None) -> Iterator[bool]:
    """Tracing on for the block when an endpoint is configured (yields whether it is), and the
    buffered spans sent when it ends."""
    configured = configure_tracing(service_name, endpoint=endpoint)
    try:
        yield configured
    finally:
        if configured:
            shutdown_tracing()
