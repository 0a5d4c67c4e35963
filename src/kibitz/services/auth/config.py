"""Settings of the auth service (`KIBITZ_AUTH_…`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, PositiveInt, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings

# Deployment providers have names like "google"; tenant providers are UUIDs, so never clash.
ProviderId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class SsoProviderSetting(BaseModel):
    """One deployment-wide sign-in provider: any OpenID Connect issuer, or GitHub (OAuth 2)."""

    id: ProviderId
    name: Annotated[str, Field(min_length=1, max_length=60)]
    kind: Literal["oidc", "github"] = "oidc"
    # OpenID Connect: the issuer, whose /.well-known/openid-configuration says the rest.
    issuer: str | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: SecretStr
    # Space-separated; unset: "openid email profile" (OIDC), "read:user user:email" (GitHub).
    scopes: str | None = None
    # GitHub Enterprise Server, or a test double: where its OAuth pages and its REST API live.
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"

    @model_validator(mode="after")
    def _issuer_for_oidc(self) -> SsoProviderSetting:
        if self.kind == "oidc" and not self.issuer:
            raise ValueError("an OpenID Connect provider needs an issuer")
        return self


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
    # Namespace of the failure counters in a shared Redis (deployments, or test runs, sharing one).
    login_throttle_key_prefix: str = "kibitz-auth-login"
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (the gateway), comma-separated.
    trusted_proxies: str = "127.0.0.1,::1"

    # Single sign-on. JSON list of SsoProviderSetting, e.g.
    # [{"id": "google", "name": "Google", "issuer": "https://accounts.google.com", ...}].
    sso_providers: list[SsoProviderSetting] = []
    # Where browsers reach kibitz (the gateway): callback URLs given to identity providers.
    public_url: str = "http://localhost:8000"
    # Hostnames, addresses or CIDRs (comma-separated) a tenant's identity provider may be at
    # although they are loopback/private (an IdP on the company LAN; the test provider).
    sso_allowed_private_hosts: str = ""
    # 10 min from "Continue with…" to the provider sending the browser back.
    sso_login_seconds: PositiveInt = 10 * 60
    # Fernet key(s) for tenants' client secrets and the sign-in cookie, comma-separated, the
    # first encrypts; unset: generated under the data dir.
    encryption_key: SecretStr | None = None

    @property
    def refresh_token_seconds(self) -> int:
        """Refresh token lifetime in seconds."""
        return self.refresh_token_days * 24 * 60 * 60

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        """The trusted proxies as a set."""
        return frozenset(part.strip() for part in self.trusted_proxies.split(",") if part.strip())
