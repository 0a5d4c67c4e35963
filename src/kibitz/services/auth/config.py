"""Settings of the auth service (`KIBITZ_AUTH_…`)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)
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
    # Failed logins that cost nothing: per account from one client address, and per address
    # over every account. After them each attempt waits a delay that doubles with every
    # further failure, from the first to the max (see login_throttle.py): the guesser slows
    # down, the owner signing in from elsewhere never does.
    login_free_failures_per_account_and_address: PositiveInt = 5
    login_free_failures_per_address: PositiveInt = 20
    login_first_delay_seconds: PositiveFloat = 1.0
    login_max_delay_seconds: PositiveFloat = 15 * 60
    # The ceiling per account over every address, per window: far above what the delays let
    # one address try, it only stops a guesser spread over many addresses.
    login_failures_per_account: PositiveInt = 200
    # 1 h: the ceiling's window, and how long counters are kept after the latest failure.
    login_failure_window_seconds: PositiveInt = 60 * 60
    # Namespace of the failure counters in a shared Redis (deployments, or test runs, sharing one).
    login_throttle_key_prefix: str = "kibitz-auth-login"
    # Addresses or networks (comma-separated) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed besides the gateway, which proves itself with a credential derived from the
    # internal token. Empty: no address is enough, loopback included.
    trusted_proxies: str = ""

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
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        """The trusted proxies as networks (an address is a network of one)."""
        return [
            ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        ]

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ip_network(part.strip(), strict=False)  # ValueError names the bad entry
        return value
