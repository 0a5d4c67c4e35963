"""Settings of the auth service (`KIBITZ_AUTH_…`)."""

from __future__ import annotations

from pydantic import PositiveInt
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    """What an operator may tune about the auth service."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_AUTH_", extra="ignore")

    # 30 days: a refresh token is rotated on every use, so this bounds an idle session only.
    refresh_token_days: PositiveInt = 30
    # Failed logins before a 429: per account and per client address, within the window;
    # further tiers (2x per 4 windows, 4x per day) make the delay grow.
    login_failures_per_account: PositiveInt = 5
    login_failures_per_ip: PositiveInt = 20
    login_failure_window_seconds: PositiveInt = 15 * 60
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (the gateway), comma-separated.
    trusted_proxies: str = "127.0.0.1,::1"

    @property
    def refresh_token_seconds(self) -> int:
        """Refresh token lifetime in seconds."""
        return self.refresh_token_days * 24 * 60 * 60

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        """The trusted proxies as a set."""
        return frozenset(part.strip() for part in self.trusted_proxies.split(",") if part.strip())
