"""Agents settings (`KIBITZ_AGENTS_…`), the model catalogue and the fallback plan."""

from __future__ import annotations

from typing import Any

from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from kibitz.kit.encryption import key_problem
from kibitz.kit.settings import ServiceSettings

# Size class of each model the deployment knows, per provider. Plans allow classes ("small",
# "large"), exact model names, "provider:model", "provider:*", or "*" (see `plans.py`).
DEFAULT_MODEL_CATALOGUE: dict[str, dict[str, str]] = {
    "openai": {
        "gpt-4o-mini": "small",
        "gpt-4.1-mini": "small",
        "gpt-4.1-nano": "small",
        "gpt-5-mini": "small",
        "gpt-4o": "large",
        "gpt-4.1": "large",
        "gpt-5": "large",
    },
    "anthropic": {
        "claude-haiku-4-5": "small",
        "claude-3-5-haiku-latest": "small",
        "claude-sonnet-4-5": "large",
        "claude-opus-4-1": "large",
    },
    "echo": {"echo": "echo"},
}

# The plan catalogue's defaults (DESIGN.md §3 tenants), used only when this deployment has no
# tenants service. The tenants service owns the real catalogue; this is the one copy agents keeps.
DEFAULT_PLANS: dict[str, dict[str, Any]] = {
    "basic": {
        "limits": {
            "requests_per_minute": 60,
            "messages_per_day": 100,
            "agents": 3,
            "tokens_per_month": 100_000,
            "models": ["echo", "small"],
        },
        "features": [],
    },
    "premium": {
        "limits": {
            "requests_per_minute": 300,
            "messages_per_day": 2_000,
            "agents": 20,
            "tokens_per_month": 2_000_000,
            "models": ["echo", "small", "large"],
        },
        "features": ["knowledge"],
    },
    "gold": {
        "limits": {
            "requests_per_minute": 1_200,
            "messages_per_day": 20_000,
            "agents": 100,
            "tokens_per_month": 20_000_000,
            "models": ["*"],
        },
        "features": ["knowledge", "multi_agent"],
    },
}
PLAN_ORDER = ["basic", "premium", "gold"]
FALLBACK_PLAN = "basic"


class AgentsSettings(ServiceSettings):
    """What the agents service can be tuned with."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_AGENTS_", extra="ignore")

    # The deployment's own provider credentials; unset keys leave only echo (and bring-your-own).
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    # Fernet key(s), comma-separated, the first encrypts, every one decrypts (rotation: `kibitz
    # agents rotate-key`). Unset: generated under the data dir, which only all-in-one may do:
    # run apart it is required (`Module.shared_settings`), every replica reads what another stored.
    encryption_key: SecretStr | None = None
    # Comma-separated hostnames, IPs or CIDRs a user's base_url may reach although they are
    # loopback/private/link-local (e.g. an Ollama on the LAN; the simulator in tests).
    allowed_private_hosts: str = ""
    model_catalogue: dict[str, dict[str, str]] = DEFAULT_MODEL_CATALOGUE
    # Size class of any model behind a `custom` (OpenAI-compatible) endpoint.
    custom_model_class: str = "small"

    # Seconds. Connect: a provider that cannot take a connection in 5 s is down. Read: the
    # longest silence between two streamed chunks. Total: one whole reply.
    connect_timeout_seconds: PositiveFloat = 5.0
    read_timeout_seconds: PositiveFloat = 60.0
    total_timeout_seconds: PositiveFloat = 300.0
    # Attempts before the first token (429, 5xx, connection errors); none after it.
    max_attempts: PositiveInt = 3
    retry_base_seconds: NonNegativeFloat = 0.25
    retry_max_seconds: NonNegativeFloat = 4.0
    # Anthropic requires a cap on output tokens; OpenAI gets one only when set.
    max_output_tokens: PositiveInt = 1024
    openai_max_output_tokens: PositiveInt | None = None
    # The Anthropic SDK no longer has a `temperature` argument; it is sent as an extra body field.
    anthropic_send_temperature: bool = True
    # Pause between echoed words, ms (makes the demo look like streaming).
    echo_word_delay_ms: NonNegativeFloat = 30.0
    # How long a tenant's plan is reused on the respond path (create/update always re-read it).
    plan_cache_seconds: NonNegativeFloat = 5.0
    # How long the reply path reuses an agent read from the database (s; 0 disables). Edits
    # through this replica apply at once, through another one within this time.
    agent_cache_seconds: NonNegativeFloat = 2.0
    # Knowledge: chunks given to the model per reply, and how long a reply waits for them (s;
    # a slower search is skipped so the reply is never held up by it).
    knowledge_top_k: PositiveInt = 4
    # Chunks less similar than this (cosine) are not given to the model: measured with the local
    # model, passages that answer a question score ~0.4-0.7 and unrelated ones below ~0.15.
    knowledge_min_score: NonNegativeFloat = 0.2
    knowledge_timeout_seconds: PositiveFloat = 2.0
    # Request size limits.
    max_messages: PositiveInt = 200
    max_message_chars: PositiveInt = 32_000
    max_total_chars: PositiveInt = 200_000

    @field_validator("encryption_key")
    @classmethod
    def _usable_keys(cls, value: SecretStr | None) -> SecretStr | None:
        problem = key_problem(value.get_secret_value()) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    def allowed_private_entries(self) -> list[str]:
        """The allow-list, split and trimmed."""
        return [entry.strip() for entry in self.allowed_private_hosts.split(",") if entry.strip()]
