"""Chat's own Prometheus metrics (HTTP metrics come from the kit)."""

from __future__ import annotations

from prometheus_client import Counter

# Many `asked_again` mean another process writes to the same chats: set
# KIBITZ_CHAT_RECENT_CHATS=0 there (see recent_messages.py).
EARLY_ASKS = Counter(
    "kibitz_chat_early_asks_total",
    "Sends that asked the agent from remembered messages, by whether the stored ones agreed",
    ["outcome"],
)
