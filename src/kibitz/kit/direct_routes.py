"""Hot routes answered straight from the ASGI server, past FastAPI's per-request machinery.

FastAPI still declares these routes (their OpenAPI document, and serving them wherever this is
not installed); a request for one goes through the kit's request context (ids, logs, metrics)
and problem+json rendering to a plain `(request) -> Response` endpoint, which resolves the
route's parameters as its dependencies would and calls the same handler. Measured on the agents'
`/respond`: FastAPI's middleware stack, routing and dependency solving cost ~190 µs a request
hot, ~0.6 ms of a chat reply's first token at one user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kibitz.kit.errors import PayloadTooLarge, ProblemError, problem_response, validation_problem
from kibitz.kit.observability import RequestContextMiddleware

logger = structlog.get_logger("kibitz.errors")

Endpoint = Callable[[Request], Awaitable[Response]]
Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class RouteLabel:
    """What the request metrics read as the route (FastAPI puts its route object there)."""

    path: str


async def answer(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the endpoint; errors become problem+json as on every kit app."""
    request = Request(scope, receive, send)
    try:
        response = await endpoint(request)
    except ProblemError as error:
        response = problem_response(error)
    except Exception as exc:
        # The trace goes to the log only: a client sees a bare 500.
        logger.error("unhandled_exception", path=scope["path"], exc_info=exc)
        response = problem_response(ProblemError("An unexpected error occurred."))
    await response(scope, receive, send)


class DirectRoutes:
    """Middleware: requests for the listed (method, path) go to their endpoint directly."""

    def __init__(
        self, app: ASGIApp, *, routes: Mapping[tuple[str, str], Endpoint], service: str
    ) -> None:
        self.app = app
        self._routes = {
            route: (
                RouteLabel(route[1]),
                RequestContextMiddleware(partial(answer, endpoint), service=service),
            )
            for route, endpoint in routes.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._routes.get((scope["method"], scope["path"]))
            if found is not None:
                scope["route"], served = found
                await served(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def json_body(request: Request, model: type[Body], *, max_bytes: int) -> Body:
    """The request's JSON body as `model`: 413 beyond `max_bytes`, 422 naming the fields that
    are wrong (as FastAPI answers for a body parameter)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise _too_large(max_bytes)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_problem(exc.errors()) from None


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body may hold at most {max_bytes} bytes.")
