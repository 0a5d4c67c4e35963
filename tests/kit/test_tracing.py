"""Traces: off without an endpoint (no span, no header), on with one; the server and client seams
continue and carry W3C trace context; a job payload carries it like an event does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kibitz.kit.app import create_service_app
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.kit.tracing import (
    active_tracer,
    configure_tracing,
    continued_span,
    otlp_endpoint,
    shutdown_tracing,
    trace_headers,
)
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.serving import serving

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert configure_tracing("kibitz-test", exporter=exporter)
    try:
        yield exporter
    finally:
        shutdown_tracing()


def _app(name: str, *, continue_traces: bool = True) -> FastAPI:
    router = APIRouter()

    @router.get(f"/{name}/headers")
    async def headers(request: Request) -> dict[str, Any]:
        return {"headers": dict(request.headers)}

    @router.get(f"/{name}/fail")
    async def fail() -> dict[str, Any]:
        raise RuntimeError("secret detail")

    return create_service_app(
        name=name, platform=Platform(), routers=[router], continue_traces=continue_traces
    )


@pytest.fixture
async def service() -> AsyncIterator[ServiceClient]:
    async with serving(_app("demo")) as url:
        client = ServiceClient("demo", [url])
        try:
            yield client
        finally:
            await client.aclose()


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert otlp_endpoint(None) is None
    assert configure_tracing("kibitz-test") is False
    assert active_tracer() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert otlp_endpoint(None) == "http://collector:4318"
    assert otlp_endpoint("http://mine:4318") == "http://mine:4318"  # kibitz's setting first
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert otlp_endpoint("http://mine:4318") is None


async def test_off_a_call_carries_no_trace_context_and_makes_no_span(
    service: ServiceClient,
) -> None:
    assert active_tracer() is None
    seen = (await service.request("GET", "/demo/headers")).json()["headers"]
    assert "traceparent" not in seen
    assert trace_headers() == {}
    with continued_span("job reply", {"traceparent": CALLER}) as span:
        assert span is None


async def test_a_call_continues_the_callers_trace_into_the_service(
    service: ServiceClient, exported: InMemorySpanExporter
) -> None:
    with continued_span("job reply", {"traceparent": CALLER}) as job:
        assert job is not None
        seen = (await service.request("GET", "/demo/headers")).json()["headers"]
    spans = {span.kind: span for span in exported.get_finished_spans()}
    client, server = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
    assert f"{client.context.span_id:016x}" in seen["traceparent"]
    assert server.parent is not None and server.parent.span_id == client.context.span_id
    assert client.parent is not None and client.parent.span_id == job.get_span_context().span_id
    assert {f"{span.context.trace_id:032x}" for span in spans.values()} == {CALLER_TRACE}
    assert server.name == "GET /demo/headers"
    assert (server.attributes or {})["http.response.status_code"] == 200
    assert (server.attributes or {})["kibitz.service"] == "demo"


async def test_a_failed_request_is_an_error_span_that_names_no_detail(
    service: ServiceClient, exported: InMemorySpanExporter
) -> None:
    assert (await service.request("GET", "/demo/fail")).status_code == 500
    spans = {span.kind: span for span in exported.get_finished_spans()}
    for span in spans.values():
        assert span.status.status_code == StatusCode.ERROR
        assert "secret detail" not in json.dumps(span.to_json())


async def test_a_public_entry_point_starts_a_trace_of_its_own(
    exported: InMemorySpanExporter,
) -> None:
    async with serving(_app("edge", continue_traces=False)) as url:
        client = ServiceClient("edge", [url])
        try:
            await client.request("GET", "/edge/headers", headers={"traceparent": CALLER})
        finally:
            await client.aclose()
    server = next(s for s in exported.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.parent is None
    assert f"{server.context.trace_id:032x}" != CALLER_TRACE


async def test_a_job_payload_carries_the_trace_to_its_worker(
    exported: InMemorySpanExporter,
) -> None:
    with continued_span("POST /chat/send", None) as request:
        assert request is not None
        payload = {"message_id": "m1", "trace": trace_headers()}
    # Later, in whichever process claims the job:
    with continued_span("job reply", payload["trace"]) as worker:
        assert worker is not None
    assert worker.parent is not None  # type: ignore[attr-defined]
    assert worker.parent.span_id == request.get_span_context().span_id  # type: ignore[attr-defined]
    assert worker.get_span_context().trace_id == request.get_span_context().trace_id


async def test_opentelemetrys_own_endpoint_variable_turns_tracing_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = OtlpReceiver()
    async with serving(receiver) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
        assert configure_tracing("kibitz-demo")
        try:
            with continued_span("job reply", None):
                pass
        finally:
            await asyncio.to_thread(shutdown_tracing)  # sends what is buffered
    assert [span.name for _, span in receiver.spans] == ["job reply"]
    assert receiver.spans[0][0] == "kibitz-demo"
