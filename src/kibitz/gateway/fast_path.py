"""API requests straight from the ASGI server to the pipeline, past FastAPI's routing layers.

Every proxied request would otherwise cross FastAPI's exception and exit-stack middlewares, the
router's matching and the endpoint wrapper before reaching code that only forwards it. The
probes, `/docs`, the web UI and the WebSocket route still go through the FastAPI app.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from kibitz.gateway.pipeline import Pipeline
from kibitz.gateway.routing import ROUTED_SERVICES
from kibitz.kit.errors import ProblemError, problem_response
from kibitz.kit.observability import RequestContextMiddleware

logger = structlog.get_logger("kibitz.errors")


@dataclass(frozen=True)
class _RouteLabel:
    """What the request metrics read as the route: one label per service."""

    path: str


_ROUTE_LABELS = {service: _RouteLabel(f"/{service}/{{path}}") for service in ROUTED_SERVICES}


class ApiFastPath:
    """Middleware: `/<service>/…` HTTP requests go to the pipeline, the rest to the app."""

    def __init__(self, app: ASGIApp, *, pipeline: Pipeline) -> None:
        self.app = app
        self.pipeline = pipeline
        # Request ids, logs and metrics exactly as the kit's app gives every other route.
        self._api = RequestContextMiddleware(self._handle, service="gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            service = scope["path"].partition("/")[2].partition("/")[0]
            if service in ROUTED_SERVICES:
                scope["route"] = _ROUTE_LABELS[service]
                await self._api(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.pipeline.handle(request)
        except ProblemError as error:
            response = problem_response(error)
        except Exception as exc:
            # The trace goes to the log only: a client sees a bare 500.
            logger.error("unhandled_exception", path=scope["path"], exc_info=exc)
            response = problem_response(ProblemError("An unexpected error occurred."))
        await response(scope, receive, send)
