"""Chat settings (`KIBITZ_CHAT_…`)."""

from __future__ import annotations

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    """What the chat service can be tuned with."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_CHAT_", extra="ignore")

    # 32 000 characters: roomy for a pasted document, small enough to keep a history page cheap.
    max_content_chars: PositiveInt = 32_000
    # Replies being generated at once per user; more answers 429.
    max_concurrent_generations: PositiveInt = 4
    # The history window sent to the agent: at most this many messages and characters.
    context_messages: PositiveInt = 20
    context_chars: PositiveInt = 24_000
    # 0.5 s: how often partial reply content is written, so a crash keeps what streamed. It is
    # the bound on how far a follower can be ahead of the database: at most this much streaming.
    persist_interval_seconds: PositiveFloat = 0.5
    # 15 ms, about a frame of a 60 Hz screen: with Redis, how long a chat's deltas after the
    # first may wait to go joined in one message (Redis, each replica and each stream pay per
    # message). Followers see the text at most this much later, never the first token; 0: each
    # goes as soon as the last is out.
    delta_linger_seconds: NonNegativeFloat = 0.015
    # 5 s: a reply's lease (the `reply_jobs` row); renewed every second while it streams, so a
    # crashed generator's reply is reclaimed within about this long (plus one sweep).
    reply_lease_seconds: PositiveFloat = 5.0
    # 1 s: how often every chat process looks for replies whose lease lapsed (and at start-up).
    reply_sweep_seconds: PositiveFloat = 1.0
    # Replies one chat process generates at once (its share of the work queue).
    reply_concurrency: PositiveInt = 256
    # 15 s: comments on idle streams so proxies do not close them.
    heartbeat_seconds: PositiveFloat = 15.0
    # 24 h: Stripe's window for remembering an Idempotency-Key.
    idempotency_ttl_seconds: PositiveInt = 24 * 3600
    # A generation that has not been touched for this long no longer counts as running (s).
    stale_generation_seconds: PositiveInt = 600
    # How long `stop` waits for the generating replica to confirm before marking it itself (s).
    stop_wait_seconds: NonNegativeFloat = 3.0
    # Upper bound on one whole reply (s); the agent call is cut off after it.
    reply_timeout_seconds: PositiveFloat = 300.0
    # 5 s: how long a tenant's plan (the `multi_agent` feature) is reused before asking again.
    plan_cache_seconds: NonNegativeFloat = 5.0
    # Orchestrated chats: the delegations (the orchestrator's calls of `ask_<agent>` tools) one
    # turn may make in all, and how deep they nest (1: a delegate cannot delegate; 0: the
    # orchestrator answers alone).
    max_delegations_per_turn: NonNegativeInt = 4
    max_delegation_depth: NonNegativeInt = 1
