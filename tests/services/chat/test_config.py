"""Chat's settings refuse values that would break it, naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kibitz.kit.settings import invalid_settings
from kibitz.services.chat.config import ChatSettings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS", "0"),
        ("KIBITZ_CHAT_MAX_CONTENT_CHARS", "0"),
        ("KIBITZ_CHAT_CONTEXT_MESSAGES", "-1"),
        ("KIBITZ_CHAT_RECENT_CHATS", "-1"),
        ("KIBITZ_CHAT_HEARTBEAT_SECONDS", "0"),
        ("KIBITZ_CHAT_IDEMPOTENCY_TTL_SECONDS", "0"),
        ("KIBITZ_CHAT_REPLY_TIMEOUT_SECONDS", "-5"),
    ],
)
def test_a_value_that_would_break_chat_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        ChatSettings()
    assert [line.split(":")[0] for line in invalid_settings(caught.value)] == [variable]


def test_edges_that_make_sense_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBITZ_CHAT_RECENT_CHATS", "0")  # several replicas: off
    monkeypatch.setenv("KIBITZ_CHAT_STOP_WAIT_SECONDS", "0")
    monkeypatch.setenv("KIBITZ_CHAT_HEARTBEAT_SECONDS", "0.2")
    settings = ChatSettings()
    assert (settings.recent_chats, settings.stop_wait_seconds) == (0, 0.0)
