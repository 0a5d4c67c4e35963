"""What chat publishes: `chat.message_completed` (carries token usage for metering)."""

from __future__ import annotations

from kibitz.contracts.events import MessageCompleted

PUBLISHED = (MessageCompleted,)
