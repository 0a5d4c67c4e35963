"""The checks of a send that need no database: the content, and a new chat's agent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kibitz.kit.errors import PROBLEM_BASE_URI, NotFound, ProblemError, Unauthorized, Unprocessable
from kibitz.kit.http import ServiceClient, ServiceResponse
from kibitz.services.chat.errors import ContentTooLarge


def check_content(content: str, *, max_chars: int) -> None:
    """1 to `max_chars` characters: 422 when empty, 413 beyond the cap."""
    if not content.strip():
        raise Unprocessable(
            "The message is empty.",
            extra={"errors": [{"field": "content", "message": "empty"}]},
        )
    if len(content) > max_chars:
        raise ContentTooLarge(f"A message holds at most {max_chars} characters.")


async def check_agent(
    agents: ServiceClient, agent_id: uuid.UUID, access_token: str
) -> dict[str, Any]:
    """A new chat must be with one of the user's agents (404 otherwise); the agent."""
    response = await agents.request(
        "GET", f"/agents/{agent_id}", headers={"Authorization": f"Bearer {access_token}"}
    )
    if response.status_code == 200:
        return dict(response.json())
    if response.status_code == 404:
        raise NotFound("No such agent.", problem_type="agent-not-found", title="Agent Not Found")
    if response.status_code == 401:
        raise Unauthorized("Invalid or expired access token.")
    raise passed_through_problem(response)


def passed_through_problem(response: ServiceResponse) -> ProblemError:
    """Another service's problem answer, as our own (same status, type, detail and extras)."""
    try:
        document = response.json()
    except ValueError:
        document = {}
    return problem_from_document(document, response.status_code, response.headers)


def problem_from_document(document: Any, status: int, headers: Mapping[str, str]) -> ProblemError:
    """A problem+json document another service answered (with its headers), as our own."""
    if not isinstance(document, dict):
        document = {}
    slug = str(document.get("type", "")).removeprefix(PROBLEM_BASE_URI).rsplit("/", 1)[-1]
    extra = {k: v for k, v in document.items() if k not in ("type", "title", "status", "detail")}
    passed = {name.lower(): value for name, value in headers.items()}
    return ProblemError(
        str(document.get("detail") or "The request was refused."),
        status=status,
        problem_type=slug or f"http-{status}",
        title=str(document.get("title") or "Error"),
        headers={
            name: passed[name]
            for name in ("retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
            if name in passed
        },
        extra=extra,
    )
