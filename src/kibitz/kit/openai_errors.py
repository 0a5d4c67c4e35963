"""Problems in OpenAI's error shape, for the routes OpenAI-compatible clients call (`/v1/…`).

OpenAI's SDKs and the tools built on them read `{"error": {"message", "type", "param", "code"}}`
and the status; a problem+json document would reach their users as an unreadable blob.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from kibitz.kit.errors import ProblemError

# OpenAI's `type` and `code` for each status (429 depends on why: see `_kind_of`).
_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
}


def openai_error_body(
    *, message: str, error_type: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The body of an OpenAI error answer."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _kind_of(problem: ProblemError) -> tuple[str, str | None]:
    if problem.status == 429:
        if problem.problem_type == "quota-exceeded":
            return "insufficient_quota", "insufficient_quota"
        return "requests", "rate_limit_exceeded"
    if problem.status in _KINDS:
        return _KINDS[problem.status]
    return ("server_error", None) if problem.status >= 500 else ("invalid_request_error", None)


def openai_problem_body(problem: ProblemError, *, code: str | None = None) -> dict[str, Any]:
    """The problem in OpenAI's error shape (also what a stream's error chunk carries), with the
    first invalid field as `param` for validation errors."""
    error_type, default_code = _kind_of(problem)
    param = None
    errors = problem.extra.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        param = str(errors[0].get("field") or "") or None
    return openai_error_body(
        message=problem.detail, error_type=error_type, code=code or default_code, param=param
    )


def openai_error_response(problem: ProblemError, *, code: str | None = None) -> JSONResponse:
    """The problem as OpenAI would answer it: same status and headers (`Retry-After`)."""
    # 422 is FastAPI's habit; OpenAI answers a malformed request with 400.
    status = 400 if problem.status == 422 else problem.status
    body = openai_problem_body(problem, code=code)
    return JSONResponse(body, status_code=status, headers=problem.headers)
