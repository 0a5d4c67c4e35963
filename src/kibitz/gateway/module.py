"""The gateway module: the one public entry point of kibitz."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket

from kibitz.contracts.events import ApiKeyRevoked, PlanChanged
from kibitz.gateway.api_keys import ApiKeyExchange
from kibitz.gateway.config import GatewaySettings
from kibitz.gateway.docs import ApiReference
from kibitz.gateway.fast_path import ApiFastPath
from kibitz.gateway.pipeline import Pipeline
from kibitz.gateway.plans import PlanLimits
from kibitz.gateway.proxy import Proxy, Upstreams
from kibitz.gateway.rate_limits import RateLimits, storage_for
from kibitz.gateway.tokens import TokenCheck
from kibitz.gateway.web import WebUI
from kibitz.kit.app import ReadinessCheck, create_service_app
from kibitz.kit.errors import NotFound
from kibitz.kit.http import forwarding_credential
from kibitz.kit.http.transport import UpstreamClient
from kibitz.kit.observability import metrics_endpoint
from kibitz.kit.platform import Module, Platform

_PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(platform: Platform) -> FastAPI:
    """The gateway app: kit conventions, then the reference, metrics, WebSocket and proxy routes."""
    settings = GatewaySettings()
    upstreams = Upstreams(platform.service_urls, cooldown_seconds=settings.cooldown_seconds)
    upstream_client = UpstreamClient(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        write_timeout=settings.write_timeout_seconds,
    )
    tenants = platform.client("tenants") if platform.has_service("tenants") else None
    auth = platform.client("auth") if platform.has_service("auth") else None
    limits = RateLimits(
        storage_for(platform.settings.redis_url, key_prefix=settings.rate_limit_key_prefix)
    )
    reference = ApiReference(upstreams, upstream_client)
    pipeline = Pipeline(
        proxy=Proxy(
            upstreams,
            upstream_client,
            trust_forwarded_for=settings.trust_forwarded_for,
            forwarded_by=forwarding_credential(platform.internal_token),
        ),
        tokens=TokenCheck(platform.token_verifier()),
        plans=PlanLimits(
            tenants,
            default_requests_per_minute=settings.default_requests_per_minute,
            cache_seconds=settings.plan_cache_seconds,
        ),
        limits=limits,
        web=WebUI(settings.web_dist),
        auth_ip_requests_per_minute=settings.auth_ip_requests_per_minute,
        read_requests_per_minute=settings.read_requests_per_minute,
        trust_forwarded_for=settings.trust_forwarded_for,
        api_keys=(
            ApiKeyExchange(auth, cache_seconds=settings.api_key_cache_seconds)
            if auth is not None
            else None
        ),
        reference=reference,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # listen, not subscribe: every gateway replica caches plans, so each must hear, and a
        # durable consumer group per replica would pile up on the broker across restarts.
        subscription = await platform.bus.listen(
            [PlanChanged.name], handler=pipeline.plans.on_plan_changed
        )
        # Likewise every replica remembers exchanged API keys, so each must hear of revocations.
        revocations = (
            await platform.bus.listen(
                [ApiKeyRevoked.name], handler=pipeline.api_keys.on_api_key_revoked
            )
            if pipeline.api_keys is not None
            else None
        )
        try:
            yield
        finally:
            if revocations is not None:
                await revocations.cancel()
            await subscription.cancel()
            await upstream_client.aclose()
            if tenants is not None:
                await tenants.aclose()
            if auth is not None:
                await auth.aclose()

    readiness: dict[str, ReadinessCheck] = (
        {"rate_limit_storage": limits.ping} if platform.settings.redis_url else {}
    )
    app = create_service_app(
        name="gateway",
        platform=platform,
        routers=[],
        lifespan=lifespan,
        readiness_checks=readiness,
        description="Routing, token check, rate limits, load balancing, web UI and API reference.",
        continue_traces=False,
    )
    app.state.pipeline = pipeline
    # The kit's open /metrics is replaced: on the public side it answers only a scraper's token.
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) != "/metrics"
    ]
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""

    async def metrics(request: Request) -> Response:
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not metrics_token or not hmac.compare_digest(presented.encode(), metrics_token.encode()):
            raise NotFound("No such route.")
        return await metrics_endpoint(request)

    async def docs(_: Request) -> Response:
        return HTMLResponse(await reference.page(), headers={"Cache-Control": "no-cache"})

    async def chat_websocket(websocket: WebSocket) -> None:
        await pipeline.handle_websocket(websocket)

    async def proxy(request: Request) -> Response:
        return await pipeline.handle(request)

    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.router.add_websocket_route("/chat/ws/{chat_id}", chat_websocket)
    app.router.routes.append(
        Route("/{path:path}", proxy, methods=_PROXIED_METHODS, include_in_schema=False)
    )
    # Added last, so it runs first: API requests skip FastAPI's layers (see fast_path.py).
    app.add_middleware(
        ApiFastPath,
        pipeline=pipeline,
        max_body_bytes=settings.max_body_bytes,
        max_large_body_bytes=settings.max_large_body_bytes,
    )
    return app


module = Module(name="gateway", create_app=create_app, depends_on=("auth",))
