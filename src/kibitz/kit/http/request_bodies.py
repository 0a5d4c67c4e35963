"""Request bodies: a size limit on every route (413 before reading), JSON only as JSON (415).

Limits are declared once, where routes are declared: FastAPI's `max_body_size=` on a route's
decorator (or on `include_router`, when a setting decides it); every other route of a kit app
takes `DEFAULT_MAX_BODY_BYTES`. `RequestBodies`, the outermost middleware of every kit app (fast
routes included), applies them; the gateway applies its own ceilings per public route with
`BodyLimit` (`gateway/routing.py`).

A body whose `Content-Length` is over the limit is refused before the app runs, so not a byte
of it is read; a chunked body is counted as the route reads it (Starlette's body limit) and
refused as soon as it passes the limit. The server drops whatever the client still sends.
Four concurrent 100 MB bodies leave the server's memory where it was
(tests/e2e/test_hardening_input.py); before this, a process went from 213 MB to 1.3 GB and
stayed there.

A route that takes a JSON body takes it only as `application/json` (or `…+json`): FastAPI hands
any other body to the model as bytes, which the kit's validation handler answers with 415
(`kit/errors.py`); routes that parse their body themselves ask `declares_json`.
"""

from __future__ import annotations

import email.message
import functools
import re

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from kibitz.kit.errors import payload_too_large, problem_response
from kibitz.kit.observability import RequestContextMiddleware

# 64 KiB: every ordinary request (a profile patch, an agent with 8 000 characters of
# instructions, a collection) fits several times over; routes that take more say so.
DEFAULT_MAX_BODY_BYTES = 64 * 1024


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, when it has a valid one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def has_body(scope: Scope) -> bool:
    """Whether the request says it carries a body (a non-zero length, or chunks)."""
    for name, value in scope["headers"]:
        if (name == b"content-length" and value.strip() not in (b"", b"0")) or (
            name == b"transfer-encoding"
        ):
            return True
    return False


class BodyLimit:
    """Middleware: the request's body may hold at most `max_bytes`. A larger declared length
    is refused at once; a chunked body is counted as the app reads it. With `service`, the
    refusal is answered in the kit's request context (ids, logs, metrics), for a middleware
    that runs outside it."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, service: str | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._counted = RequestBodyLimitMiddleware(app, max_body_size=max_bytes)
        self._refuse: ASGIApp = (
            self._too_large
            if service is None
            else RequestContextMiddleware(self._too_large, service=service)
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(payload_too_large(self.max_bytes))(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = declared_length(scope)
        if declared is None:  # chunked: counted as it is read
            await self._counted(scope, receive, send)
        elif declared > self.max_bytes:
            await self._refuse(scope, receive, send)
        else:
            # The server reads no byte past a declared length: nothing to count, and the
            # answer's messages (every chunk of a stream) skip the counting wrapper.
            scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_bytes
            await self.app(scope, receive, send)


class RequestBodies:
    """Middleware: every request with a body, within its route's limit (see module doc)."""

    def __init__(
        self, app: ASGIApp, *, fastapi_app: FastAPI, service: str, default_max_bytes: int
    ) -> None:
        self.app = app
        self._service = service
        self._default = self._limited(default_max_bytes)
        # Only routes whose limit differs from the default are looked up: exact paths in a
        # dict, paths with parameters (few: uploads) by their pattern.
        self._exact: dict[tuple[str, str], BodyLimit] = {}
        self._patterns: list[tuple[str, re.Pattern[str], BodyLimit]] = []
        for context in iter_route_contexts(fastapi_app.routes):
            max_bytes = getattr(context, "max_body_size", None)
            if max_bytes is None or max_bytes == default_max_bytes or context.path is None:
                continue
            limited = self._limited(max_bytes)
            for method in context.methods or ():
                if "{" in context.path:
                    self._patterns.append((method, context.path_regex, limited))
                else:
                    self._exact[(method, context.path)] = limited

    def _limited(self, max_bytes: int) -> BodyLimit:
        return BodyLimit(self.app, max_bytes=max_bytes, service=self._service)

    def _limit_for(self, method: str, path: str) -> BodyLimit:
        found = self._exact.get((method, path))
        if found is not None:
            return found
        for route_method, pattern, limited in self._patterns:
            if method == route_method and pattern.match(path):
                return limited
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        await self._limit_for(scope["method"], scope["path"])(scope, receive, send)


@functools.lru_cache(maxsize=64)
def declares_json(content_type: str) -> bool:
    """Whether a body of this Content-Type is JSON (`application/json`, `…+json`), as FastAPI
    decides it."""
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
