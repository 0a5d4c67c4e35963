"""Gateway settings (`KIBITZ_GATEWAY_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, NonNegativeFloat, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Basic plan's requests/min: the tenant limit when the deployment has no tenants service.
BASIC_REQUESTS_PER_MINUTE = 60


class GatewaySettings(BaseSettings):
    """Timeouts, cool-downs, limits and where the web UI lives."""

    model_config = SettingsConfigDict(
        env_prefix="KIBITZ_GATEWAY_", extra="ignore", populate_by_name=True
    )

    # 2 s: a healthy replica on the same network accepts a connection in well under a millisecond.
    connect_timeout_seconds: PositiveFloat = 2.0
    # 120 s between two chunks of an answer: a slow model's first token, or an SSE stream's
    # heartbeat gap, must not cut a live stream.
    read_timeout_seconds: PositiveFloat = 120.0
    write_timeout_seconds: PositiveFloat = 30.0
    # 10 s: a replica that refused a connection is skipped this long.
    cooldown_seconds: NonNegativeFloat = 10.0

    # Per client IP on the public auth routes (register, login, refresh, logout, and the single
    # sign-on start and callback), per minute.
    auth_ip_requests_per_minute: PositiveInt = 30
    # Per tenant when the deployment has no tenants service (or it cannot be asked).
    default_requests_per_minute: PositiveInt = BASIC_REQUESTS_PER_MINUTE
    # Per user, for every authenticated request that costs no model or indexing work (page
    # loads, lists, history): generous, since one page load alone makes about five requests.
    read_requests_per_minute: PositiveInt = 600
    # 30 s: a plan change reaches the limit at once through the bus; this bounds a missed event.
    plan_cache_seconds: NonNegativeFloat = 30.0
    # 30 s: how long an exchanged API key is trusted without asking auth again; a revocation
    # reaches every replica at once through the bus, so this only bounds a missed event.
    api_key_cache_seconds: NonNegativeFloat = 30.0
    # Redis key prefix, so that several deployments (or tests) can share one Redis.
    rate_limit_key_prefix: str = "kibitz-gateway"
    # Request bodies (bytes): a ceiling in front of each service's own per-route limit, so that
    # nothing larger is forwarded. 1 MiB for every route (a chat message is the largest of
    # them), 16 MiB for the routes in LARGE_BODY_ROUTES (documents, whole conversations).
    max_body_bytes: PositiveInt = 1024 * 1024
    max_large_body_bytes: PositiveInt = 16 * 1024 * 1024
    # Behind a trusted load balancer: keep its X-Forwarded-For (client IP = its last hop).
    trust_forwarded_for: bool = False

    # The built React app (Vite's `dist`); relative paths resolve against the working directory.
    web_dist: Path = Field(
        default=Path("web/dist"),
        validation_alias=AliasChoices("KIBITZ_WEB_DIST", "KIBITZ_GATEWAY_WEB_DIST"),
    )
    # Prometheus scrapes the gateway's own /metrics with this bearer token; unset: /metrics is 404.
    metrics_token: SecretStr | None = None
