"""QuotaHints: plenty left a moment ago lets work start early; a thin answer or a refusal not."""

from __future__ import annotations

import uuid

import pytest

from kibitz.kit import quota_hints
from kibitz.kit.quota_hints import QuotaHints, comfortable

TENANT = uuid.UUID(int=1)


def test_plenty_is_a_tenth_of_the_limit_and_at_least_the_minimum() -> None:
    assert comfortable({"remaining": 10, "limit": 100}, minimum=5)
    assert not comfortable({"remaining": 9, "limit": 100}, minimum=5)
    assert not comfortable({"remaining": 9_000, "limit": 1_000_000}, minimum=5)
    assert not comfortable({"remaining": 20, "limit": 20}, minimum=8192)


def test_a_comfortable_answer_is_trusted_for_the_recheck_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(quota_hints.time, "monotonic", lambda: now[0])
    hints = QuotaHints(recheck_seconds=10)
    assert not hints.plenty(TENANT, "messages")
    hints.learn(TENANT, "messages", {"remaining": 90, "limit": 100}, minimum=5)
    assert hints.plenty(TENANT, "messages")
    assert not hints.plenty(TENANT, "tokens")  # per metric
    assert not hints.plenty(uuid.UUID(int=2), "messages")  # per tenant
    now[0] += 10.5
    assert not hints.plenty(TENANT, "messages")


def test_a_thin_answer_or_a_refusal_ends_the_hint() -> None:
    hints = QuotaHints()
    hints.learn(TENANT, "messages", {"remaining": 90, "limit": 100}, minimum=5)
    hints.learn(TENANT, "messages", {"remaining": 3, "limit": 100}, minimum=5)
    assert not hints.plenty(TENANT, "messages")
    hints.learn(TENANT, "messages", {"remaining": 90, "limit": 100}, minimum=5)
    hints.forget(TENANT, "messages")
    assert not hints.plenty(TENANT, "messages")
