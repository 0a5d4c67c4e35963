"""API requests straight from the ASGI server to the pipeline, past FastAPI's routing layers.

Every proxied request would otherwise cross FastAPI's exception and exit-stack middlewares, the
router's matching and the endpoint wrapper before reaching code that only forwards it. The
probes, `/docs`, the web UI and the WebSocket route still go through the FastAPI app.
"""

from __future__ import annotations

from functools import partial

from starlette.types import ASGIApp, Receive, Scope, Send

from kibitz.gateway.pipeline import Pipeline
from kibitz.gateway.routing import ROUTED_PREFIXES, takes_large_body
from kibitz.kit.http.fast_routes import RouteLabel, answer
from kibitz.kit.http.request_bodies import BodyLimit, has_body
from kibitz.kit.observability import RequestContextMiddleware

# What the request metrics read as the route: one label per service.
_ROUTE_LABELS = {prefix: RouteLabel(f"/{prefix}/{{path}}") for prefix in ROUTED_PREFIXES}


class ApiFastPath:
    """Middleware: `/<service>/…` HTTP requests go to the pipeline, the rest to the app."""

    def __init__(
        self, app: ASGIApp, *, pipeline: Pipeline, max_body_bytes: int, max_large_body_bytes: int
    ) -> None:
        self.app = app
        # Request ids, logs, metrics and problem answers exactly as the kit's app gives every
        # other route; traces start here (a public caller's trace context is not continued);
        # a body over the route's limit is refused before anything is forwarded.
        handle = partial(answer, pipeline.handle)
        self._api = RequestContextMiddleware(
            BodyLimit(handle, max_bytes=max_body_bytes), service="gateway", continue_traces=False
        )
        self._large_body_api = RequestContextMiddleware(
            BodyLimit(handle, max_bytes=max_large_body_bytes),
            service="gateway",
            continue_traces=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefix = scope["path"].partition("/")[2].partition("/")[0]
            if prefix in ROUTED_PREFIXES:
                scope["route"] = _ROUTE_LABELS[prefix]
                large = has_body(scope) and takes_large_body(scope["method"], scope["path"])
                await (self._large_body_api if large else self._api)(scope, receive, send)
                return
        await self.app(scope, receive, send)
