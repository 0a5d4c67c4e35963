"""How a provider's HTTP error answer is classified, whichever SDK raised it."""

from __future__ import annotations

import pytest

from kibitz.services.agents.providers.base import error_for_status


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (429, {"retry-after-ms": "1500"}, "rate_limited", 1.5),
        (429, {"retry-after": "7"}, "rate_limited", 7.0),
        (429, {"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, "rate_limited", None),
        (401, {}, "credentials", None),
        (403, None, "credentials", None),
        (408, {}, "unavailable", None),
        (500, {"retry-after": "2"}, "unavailable", 2.0),
        (529, {}, "unavailable", None),  # Anthropic's "overloaded"
        (400, {}, "rejected", None),
        (404, {}, "rejected", None),
    ],
)
def test_an_error_answer_is_classified_by_its_status(
    status: int, headers: dict[str, str] | None, kind: str, retry_after: float | None
) -> None:
    error = error_for_status(status, headers)
    assert (error.kind, error.status, error.retry_after) == (kind, status, retry_after)
    assert error.retryable == (kind in ("rate_limited", "unavailable"))
