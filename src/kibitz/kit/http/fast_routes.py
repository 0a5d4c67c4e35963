"""Hot routes declared once and served below FastAPI's per-request machinery.

A route is written once, as a FastAPI route, and marked `@fast_route`. FastAPI documents it
(OpenAPI) and serves it wherever the fast path is off; the kit serves it from the ASGI server
straight to the endpoint: the request context (ids, logs, metrics) as on every route, then the
route's own parameters resolved from FastAPI's analysis of it (`route.dependant`), in FastAPI's
order, and errors rendered by the app's own exception handlers, so both paths answer alike
(tests/kit/http/test_fast_routes.py sends the same requests both ways).

Measured here on a route like `/agents/respond` (body model, two dependencies, a header, the
request), CPU per request without the network: 120-140 µs through FastAPI, ~100 µs calling the
route's FastAPI handler past the middleware, 27-37 µs this way. Every chat message crosses two
of these routes (chat's `/send`, agents' `/respond`).

What a fast route may take: dependencies that take only the request (no `yield`), header
parameters, the request, and one JSON body model; anything else is refused when the app is built.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, HTTPException
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kibitz.kit.errors import ProblemError, http_exception_problem, problem_response
from kibitz.kit.http.request_bodies import declares_json
from kibitz.kit.observability import RequestContextMiddleware

logger = structlog.get_logger("kibitz.errors")

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])
PlainEndpoint = Callable[[Request], Awaitable[Response]]

# Endpoints marked fast.
_FAST_ENDPOINTS: set[Callable[..., Any]] = set()


def fast_route() -> Callable[[Endpoint], Endpoint]:
    """Mark a FastAPI endpoint to be served by the kit's fast path. Its body limit is the one
    its route declares (`max_body_size=`), on both paths. The function itself is unchanged."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _FAST_ENDPOINTS.add(endpoint)
        return endpoint

    return mark


class FastRouteError(TypeError):
    """A route marked fast takes something the fast path cannot resolve."""


class _FastEndpoint:
    """One marked route, resolved as FastAPI would resolve it."""

    def __init__(self, app: FastAPI, route: APIRoute) -> None:
        dependant = route.dependant
        where = f"{sorted(route.methods or ())} {route.path}"
        unsupported = (
            dependant.path_params
            or dependant.query_params
            or dependant.cookie_params
            or dependant.background_tasks_param_name
            or dependant.response_param_name
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
            or dependant.security_scopes_param_name
        )
        if unsupported:
            raise FastRouteError(f"{where}: only headers, a body, the request and dependencies")
        self._dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        for sub in dependant.dependencies:
            plain = sub.call is not None and not (
                sub.dependencies
                or sub.path_params
                or sub.query_params
                or sub.header_params
                or sub.cookie_params
                or sub.body_params
            )
            if (
                not plain
                or sub.name is None
                or not inspect.iscoroutinefunction(sub.call)
                or sub.request_param_name is None
            ):
                raise FastRouteError(f"{where}: dependency {sub.name} must be `async (request)`")
            self._dependencies.append((sub.name, sub.call))
        if len(dependant.body_params) > 1 or route.body_field is None:
            raise FastRouteError(f"{where}: exactly one body model")
        self._header_params = dependant.header_params
        # Optional plain-text headers (the usual kind) are read directly; FastAPI's own
        # parameter code (~10 µs a request) handles any other.
        self._plain_headers: list[tuple[str, str, Any]] | None = [
            (field.name, field.alias.lower(), field.field_info.default)
            for field in dependant.header_params
            if field.alias != field.name
            and not field.field_info.is_required()
            and field.field_info.annotation in (str, str | None)
            and not field.field_info.metadata
        ]
        if len(self._plain_headers) != len(dependant.header_params):
            self._plain_headers = None
        self._body_params = dependant.body_params
        self._request_name = dependant.request_param_name
        self._call: Callable[..., Awaitable[Response]] = dependant.call  # type: ignore[assignment]
        self._handlers = app.exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self._answer(request)
        except Exception as exc:
            response = await self._render(request, exc)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        # FastAPI's order: the body is read (and decoded) first, then the dependencies run,
        # then parameter and body errors are raised together.
        body = await self._body(request)
        values: dict[str, Any] = {}
        for name, call in self._dependencies:
            values[name] = await call(request)
        errors: list[Any] = []
        if self._plain_headers is not None:
            for name, alias, default in self._plain_headers:
                values[name] = request.headers.get(alias, default)
        else:
            headers, errors = request_params_to_args(self._header_params, request.headers)
            values.update(headers)
        fields, body_errors = await request_body_to_args(
            self._body_params, body, embed_body_fields=False
        )
        values.update(fields)
        errors += body_errors
        if errors:
            raise RequestValidationError(errors, body=body)
        if self._request_name is not None:
            values[self._request_name] = request
        response = await self._call(**values)
        if not isinstance(response, Response):
            raise FastRouteError("a fast route's endpoint returns a Response")
        return response

    async def _body(self, request: Request) -> Any:
        """The body as FastAPI's route handler reads it: JSON when declared so, else bytes."""
        raw = await request.body()  # within the route's body limit (RequestBodies)
        if not raw:
            return PydanticUndefined  # FastAPI's "no body", which the model then finds missing
        content_type = request.headers.get("content-type")
        if content_type and declares_json(content_type):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                error = {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
                raise RequestValidationError([error], body=exc.doc) from exc
            except UnicodeDecodeError as exc:
                # Not UTF-8/16/32 at all: FastAPI's own route answers 400 here, so do we.
                raise HTTPException(400, "There was an error parsing the body") from exc
        return bytes(raw)

    async def _render(self, request: Request, exc: Exception) -> Response:
        """The answer the app's own exception handlers give (as FastAPI's middleware would)."""
        for kind in type(exc).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
        raise exc


@dataclass(frozen=True)
class RouteLabel:
    """What the request metrics read as the route, for a path served past FastAPI's router."""

    path: str


async def answer(endpoint: PlainEndpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with a `(request) -> Response` endpoint; errors become problem+json as on every
    kit app (the gateway's API path, which forwards without declaring a route per path)."""
    request = Request(scope, receive, send)
    try:
        response = await endpoint(request)
    except ProblemError as error:
        response = problem_response(error)
    except StarletteHTTPException as exc:  # the body limit's 413 among others
        response = problem_response(http_exception_problem(exc, scope))
    except Exception as exc:
        # The trace goes to the log only: a client sees a bare 500.
        logger.error("unhandled_exception", path=scope["path"], exc_info=exc)
        response = problem_response(ProblemError("An unexpected error occurred."))
    await response(scope, receive, send)


def fast_endpoints(
    app: FastAPI, *, service: str
) -> dict[tuple[str, str], tuple[RouteLabel, ASGIApp]]:
    """The app's routes marked `@fast_route`, by (method, path): what the metrics call the
    route, and its fast endpoint in the kit's request context within the route's body limit.
    FastRouteError names a route the fast path cannot resolve."""
    served: dict[tuple[str, str], tuple[RouteLabel, ASGIApp]] = {}
    for context in iter_route_contexts(app.routes):
        endpoint = context.endpoint
        route = context.original_route
        if (
            endpoint not in _FAST_ENDPOINTS
            or not isinstance(route, APIRoute)
            or context.path is None
        ):
            continue
        # Its body limit was applied before (`request_bodies.RequestBodies`).
        fast = RequestContextMiddleware(_FastEndpoint(app, route), service=service)
        for method in context.methods or ():
            served[(method, context.path)] = (RouteLabel(context.path), fast)
    return served


class FastRoutes:
    """Middleware: requests for a route marked `@fast_route` go to its fast endpoint (unless
    `serve_fast` is off: then FastAPI serves them as any other route)."""

    def __init__(
        self, app: ASGIApp, *, fastapi_app: FastAPI, service: str, serve_fast: bool = True
    ) -> None:
        self.app = app
        self._routes = fast_endpoints(fastapi_app, service=service) if serve_fast else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._routes.get((scope["method"], scope["path"]))
            if found is not None:
                # What the request metrics read as the route, as FastAPI's router sets it.
                scope["route"], served = found
                await served(scope, receive, send)
                return
        await self.app(scope, receive, send)
