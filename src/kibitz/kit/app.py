"""The app every service is built on: problem+json errors, request ids, metrics and probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kibitz.kit.db.availability import install_database_problems
from kibitz.kit.errors import NotFound, document_route_problems, install_problem_handlers
from kibitz.kit.events import EventEnvelope
from kibitz.kit.events.relay import CONSUMERS_PATH, DELIVERY_PATH, RelayedBus, UnknownConsumer
from kibitz.kit.http.fast_routes import FastRoutes, fast_endpoints
from kibitz.kit.http.request_bodies import DEFAULT_MAX_BODY_BYTES, RequestBodies
from kibitz.kit.observability import RequestContextMiddleware, metrics_endpoint
from kibitz.kit.platform import Platform
from kibitz.kit.security import ServiceCaller
from kibitz.kit.service_gauges import ServiceGauges

ReadinessCheck = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# 2 s: a readiness probe must answer well inside a typical 5 s probe timeout.
_READINESS_TIMEOUT_SECONDS = 2.0


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def _document_route_problems(app: FastAPI) -> None:
    """The OpenAPI document lists the kit's shared answers (413, 415, 429…) on every route."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_route_problems(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_service_app(
    *,
    name: str,
    platform: Platform,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None = None,
    readiness_checks: dict[str, ReadinessCheck] | None = None,
    description: str = "",
    version: str = "0.1.0",
    fast_routes: bool = True,
    gauges: ServiceGauges | None = None,
    continue_traces: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A FastAPI app with kibitz's conventions; routers carry the service's own routes, those
    marked `@fast_route` are served past FastAPI's per-request work unless `fast_routes` is off
    (see `kit/http/fast_routes.py`), and `gauges` are read from the service's database on
    every scrape. `continue_traces` off (the public gateway): callers' trace contexts are not
    continued (see `kit/tracing.py`). A request body may hold `max_body_bytes` unless its
    route declares its own limit (FastAPI's `max_body_size`, see `kit/http/request_bodies.py`)."""
    app = FastAPI(
        title=f"kibitz {name}",
        description=description,
        version=version,
        lifespan=lifespan or _no_lifespan,
        openapi_url=f"/{name}/openapi.json",
        docs_url=None,
        redoc_url=None,
        # Metrics and logs are the kit's own (Prometheus, structlog): FastAPI's OpenTelemetry
        # hooks would only look up unconfigured providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    _document_route_problems(app)
    app.state.service_name = name
    app.state.platform = platform
    app.state.internal_token = platform.internal_token
    app.state.token_verifier = platform.token_verifier()
    install_problem_handlers(app)
    install_database_problems(app)
    app.add_middleware(RequestContextMiddleware, service=name, continue_traces=continue_traces)
    for router in routers:
        app.include_router(router)
    checks = dict(readiness_checks or {})
    # Others may add checks after the app is built (the runtime adds the required peers).
    app.state.readiness_checks = checks

    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def readyz() -> Response:
        results = await asyncio.gather(
            *(asyncio.wait_for(check(), _READINESS_TIMEOUT_SECONDS) for check in checks.values()),
            return_exceptions=True,
        )
        status = {
            check: "ok" if not isinstance(result, BaseException) else "unavailable"
            for check, result in zip(checks, results, strict=True)
        }
        ready = all(value == "ok" for value in status.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": status}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        if gauges is not None:
            await gauges.refresh()
        return await metrics_endpoint(request)

    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["probes"], summary="Alive")
    app.add_api_route("/readyz", readyz, methods=["GET"], tags=["probes"], summary="Ready")
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    if isinstance(platform.bus, RelayedBus):
        _take_relayed_events(app, platform.bus)
    fast_endpoints(app, service=name)  # refuses a route it cannot serve now, not at a request
    app.add_middleware(FastRoutes, fastapi_app=app, service=name, serve_fast=fast_routes)
    # Added last, so it runs first: no route reads a body over its limit, fast ones included.
    app.add_middleware(
        RequestBodies, fastapi_app=app, service=name, default_max_bytes=max_body_bytes
    )
    return app


def _take_relayed_events(app: FastAPI, bus: RelayedBus) -> None:
    """The routes through which the parent of a process apart relays its events (see
    `kit/events/relay.py`); for kibitz services only."""

    async def consumers() -> dict[str, Any]:
        return {"items": bus.consumers()}

    async def deliver(consumer: str, request: Request) -> Response:
        envelope = EventEnvelope.from_bytes(await request.body())
        try:
            await bus.deliver(consumer, envelope)
        except UnknownConsumer as exc:
            raise NotFound("This process has no such event consumer.") from exc
        return Response(status_code=204)

    only_services = [ServiceCaller]
    app.add_api_route(
        CONSUMERS_PATH,
        consumers,
        methods=["GET"],
        include_in_schema=False,
        dependencies=only_services,
    )
    app.add_api_route(
        DELIVERY_PATH,
        deliver,
        methods=["POST"],
        include_in_schema=False,
        dependencies=only_services,
    )
