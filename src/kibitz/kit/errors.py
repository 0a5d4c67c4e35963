"""RFC 9457 problem+json: domain errors carry status and type; one set of handlers renders them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE_URI = "https://kibitz.dev/problems/"

logger = structlog.get_logger("kibitz.errors")


class ProblemError(Exception):
    """An error a client may see: status, a problem type slug, a title and a detail."""

    status: int = 500
    problem_type: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status or self.status
        self.problem_type = problem_type or self.problem_type
        self.title = title or self.title
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        """The problem document."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE_URI + self.problem_type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class BadRequest(ProblemError):
    status, problem_type, title = 400, "bad-request", "Bad Request"


class Unauthorized(ProblemError):
    status, problem_type, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError):
    status, problem_type, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, problem_type, title = 404, "not-found", "Not Found"


class Conflict(ProblemError):
    status, problem_type, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ProblemError):
    status, problem_type, title = 413, "payload-too-large", "Payload Too Large"


def payload_too_large(max_bytes: int | None) -> PayloadTooLarge:
    """The 413 for a body over `max_bytes`."""
    detail = (
        f"The request body may hold at most {max_bytes} bytes."
        if max_bytes is not None
        else "The request body is too large."
    )
    return PayloadTooLarge(detail)


class UnsupportedMediaType(ProblemError):
    status, problem_type, title = 415, "unsupported-media-type", "Unsupported Media Type"


class Unprocessable(ProblemError):
    status, problem_type, title = 422, "validation-error", "Unprocessable Content"


class TooManyRequests(ProblemError):
    status, problem_type, title = 429, "rate-limited", "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        headers = {"Retry-After": str(max(1, retry_after)), **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class BadGateway(ProblemError):
    status, problem_type, title = 502, "bad-gateway", "Bad Gateway"


class ServiceUnavailable(ProblemError):
    status, problem_type, title = 503, "service-unavailable", "Service Unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kwargs: Any) -> None:
        headers = {"Retry-After": str(retry_after), **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class GatewayTimeout(ProblemError):
    status, problem_type, title = 504, "gateway-timeout", "Gateway Timeout"


def problem_response(error: ProblemError) -> JSONResponse:
    """Render a problem as an `application/problem+json` response."""
    return JSONResponse(
        error.to_dict(),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


_STATUS_PROBLEMS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
}


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Unprocessable:
    """A 422 listing pydantic's errors as (field, message) pairs."""
    fields = []
    for error in errors:
        # A body that is not JSON at all: the field is the body, not the character position.
        loc = error.get("loc", ()) if error.get("type") != "json_invalid" else ()
        location = [str(part) for part in loc if part != "body"]
        fields.append({"field": ".".join(location) or "body", "message": str(error.get("msg"))})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in fields)[:500]
    return Unprocessable(detail or "Invalid request", extra={"errors": fields})


async def _handle_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc)


def http_exception_problem(exc: StarletteHTTPException, scope: Mapping[str, Any]) -> ProblemError:
    """The problem for an HTTPException raised by Starlette or FastAPI (a 413 from the body
    limit names the limit in force, read from the request's scope)."""
    if exc.status_code == 413:
        limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        return payload_too_large(limit if isinstance(limit, int) else None)
    problem_class = _STATUS_PROBLEMS.get(exc.status_code, ProblemError)
    detail = exc.detail if isinstance(exc.detail, str) else None
    error = problem_class(detail, status=exc.status_code, headers=exc.headers)
    if exc.status_code == 405:
        error.problem_type, error.title = "method-not-allowed", "Method Not Allowed"
    if problem_class is ProblemError and exc.status_code != 405:
        error.problem_type, error.title = f"http-{exc.status_code}", detail or "Error"
    return error


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(http_exception_problem(exc, request.scope))


def _body_not_json(errors: Sequence[Mapping[str, Any]]) -> bool:
    # FastAPI decodes a body as JSON only when its Content-Type says JSON; any other body
    # reaches the model as raw bytes, so a model that met bytes met a body of another type.
    return any(
        tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes)
        for error in errors
    )


async def _handle_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if _body_not_json(exc.errors()):
        return problem_response(
            UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
        )
    return problem_response(validation_problem(exc.errors()))


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The bare 500 for an error nobody expected (its trace is logged, never answered)."""
    # The trace goes to the log only: a client sees a bare 500.
    logger.error("unhandled_exception", path=request.url.path, exc_info=exc)
    error = ProblemError("An unexpected error occurred.")
    # This answer leaves through ServerErrorMiddleware, outside the request-id middleware.
    request_id = getattr(request.state, "request_id", None)
    if isinstance(request_id, str):
        error.headers["X-Request-ID"] = request_id
    return problem_response(error)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error path of `app` answer problem+json."""
    app.add_exception_handler(ProblemError, _handle_problem)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(Exception, handle_unexpected)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json answers for the given statuses."""
    titles = {
        400: "Bad Request",
        401: "Missing or invalid access token",
        403: "Authenticated but not allowed",
        404: "Not found, or not yours",
        409: "Conflict",
        413: "Payload too large",
        415: "Body must be application/json",
        422: "Validation error",
        429: "Limit reached (see Retry-After)",
        500: "Unexpected error",
        502: "Upstream answered badly",
        503: "Upstream unavailable (see Retry-After)",
        504: "Upstream timed out",
    }
    return {
        status: {
            "description": titles.get(status, "Error"),
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": PROBLEM_SCHEMA,
                    "example": {
                        "type": PROBLEM_BASE_URI + "example",
                        "title": titles.get(status, "Error"),
                        "status": status,
                        "detail": "A sentence that says what went wrong.",
                    },
                }
            },
        }
        for status in statuses
    }


# Answers the kit or the gateway can give on any route before the route's own code runs:
# validation (422), the gateway's rate limits (429), an unexpected error (500), and a service
# or its database that cannot answer now (503, Retry-After: kit/db/availability.py, the
# gateway's proxy).
EVERY_ROUTE_STATUSES = (422, 429, 500, 503)
# And on a route that takes a body: unreadable (400), over its limit (413), not JSON (415).
BODY_ROUTE_STATUSES = (400, 413, 415)
_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_route_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the answers every route (and every route with a body) can give to each operation of
    an OpenAPI document, beside the ones the route declares itself; the probes are left alone."""
    shared = problem_responses(*EVERY_ROUTE_STATUSES, *BODY_ROUTE_STATUSES)
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _OPERATIONS or "probes" in operation.get("tags", ()):
                continue
            statuses: tuple[int, ...] = EVERY_ROUTE_STATUSES
            if "requestBody" in operation:
                statuses = (*BODY_ROUTE_STATUSES, *EVERY_ROUTE_STATUSES)
            responses = operation.setdefault("responses", {})
            for status in statuses:
                # FastAPI documents its own 422 (application/json, HTTPValidationError) on every
                # route with parameters; the kit answers problem+json, so that one is replaced.
                if PROBLEM_MEDIA_TYPE not in responses.get(str(status), {}).get("content", {}):
                    responses[str(status)] = shared[status]
    return schema
