"""Logs for people at a terminal, JSON elsewhere; metrics that never carry a tenant."""

from __future__ import annotations

import io

import pytest
from prometheus_client import REGISTRY

from kibitz.kit.observability import logs_as_json
from kibitz.runtime.registry import available_modules


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_are_json_unless_a_person_reads_them_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert logs_as_json(None) is True
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert logs_as_json(None) is False
    assert logs_as_json(True) is True  # asked for: KIBITZ_LOG_JSON=true


def test_no_metric_is_labelled_by_tenant_or_user() -> None:
    available_modules()  # every module's metrics are registered on import
    labels = {
        name: set(getattr(collector, "_labelnames", ()))
        for name, collector in REGISTRY._names_to_collectors.items()
    }
    per_identity = {
        name: found
        for name, found in labels.items()
        if found & {"tenant", "tenant_id", "user", "user_id", "chat_id", "agent_id"}
    }
    assert not per_identity, f"a series per tenant or user: {per_identity}"
    # Those that concern a tenant's use carry its plan instead.
    for name in (
        "kibitz_llm_tokens_total",
        "kibitz_llm_time_to_first_token_seconds",
        "kibitz_rate_limit_rejections_total",
    ):
        assert "plan" in labels[name], name
