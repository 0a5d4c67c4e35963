"""Simulator defaults, from `KIBITZ_SIM_…` variables or the `kibitz simulate-llm` options."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    """How the simulated model answers when a request asks for nothing else."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_SIM_", extra="ignore")

    # Time to first token, milliseconds.
    ttft_ms: float = 50.0
    # Gap between tokens, milliseconds (10 ms = 100 tokens/s); `tokens_per_second` overrides it.
    gap_ms: float = 10.0
    tokens_per_second: float | None = None
    # Fixed reply text; unset: a reply derived from the request (model, temperature, system, echo).
    reply: str | None = None
    # Fixed reply length in tokens (words); unset: the length of the reply text.
    tokens: int | None = None
    # How many received requests `GET /_sim/requests` remembers.
    max_recorded_requests: int = 200

    def token_gap_ms(self) -> float:
        """The configured gap between tokens, milliseconds."""
        if self.tokens_per_second:
            return 1000.0 / self.tokens_per_second
        return self.gap_ms
