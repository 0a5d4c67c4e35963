"""Chat settings (`KIBITZ_CHAT_…`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings

# Bounds that refuse a setting which would break chat (`0` concurrent replies, a negative
# heartbeat) at start-up, with its variable named, instead of failing at the first send.
Positive = Annotated[int, Field(ge=1)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class ChatSettings(ServiceSettings):
    """What the chat service can be tuned with."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_CHAT_", extra="ignore")

    # 32 000 characters: roomy for a pasted document, small enough to keep a history page cheap.
    max_content_chars: Positive = 32_000
    # Replies being generated at once per user; more answers 429.
    max_concurrent_generations: Positive = 4
    # The history window sent to the agent: at most this many messages and characters.
    context_messages: Positive = 20
    context_chars: Positive = 24_000
    # Chats whose latest messages this process remembers, so a send asks the agent before it
    # reads them back (see recent_messages.py). 0 turns it off: several chat replicas serving
    # the same chats (round-robin) would each remember stale messages and ask twice.
    recent_chats: Annotated[int, Field(ge=0)] = 1000
    # 0.5 s: how often partial reply content is written, so a crash keeps what streamed.
    persist_interval_seconds: PositiveSeconds = 0.5
    # 15 s: comments on idle streams so proxies do not close them.
    heartbeat_seconds: PositiveSeconds = 15.0
    # 24 h: Stripe's window for remembering an Idempotency-Key.
    idempotency_ttl_seconds: Positive = 24 * 3600
    # A generation that has not been touched for this long no longer counts as running (s).
    stale_generation_seconds: Positive = 600
    # How long `stop` waits for the generating replica to confirm before marking it itself (s).
    stop_wait_seconds: Annotated[float, Field(ge=0)] = 3.0
    # Upper bound on one whole reply (s); the agent call is cut off after it.
    reply_timeout_seconds: PositiveSeconds = 300.0
