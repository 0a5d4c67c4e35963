"""Request and response shapes of the single sign-on routes."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from kibitz.kit.inputs import SingleLineText
from kibitz.services.auth.schemas import Password, UtcDatetime

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(value):
        raise ValueError("must be an email domain such as example.com")
    return value


def _unique(values: list[str]) -> list[str]:
    return sorted(set(values))


EmailDomain = Annotated[str, Field(max_length=253), AfterValidator(_domain)]


class ProviderRead(BaseModel):
    """A sign-in option."""

    id: str = Field(description="A deployment provider's name, or a tenant provider's UUID.")
    name: str
    kind: Literal["oidc", "github"]


class ProviderList(BaseModel):
    """The sign-in options for an email (or for anyone)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10",
                            "name": "your organisation (login.acme.example)",
                            "kind": "oidc",
                        },
                        {"id": "github", "name": "GitHub", "kind": "github"},
                    ]
                }
            ]
        }
    )

    items: list[ProviderRead]


_TENANT_PROVIDER_EXAMPLE: dict[str, JsonValue] = {
    "issuer": "https://login.acme.example",
    "client_id": "kibitz",
    "domains": ["acme.example"],
    "enforce": True,
}


class TenantProviderWrite(BaseModel):
    """The tenant's own OpenID Connect provider."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_TENANT_PROVIDER_EXAMPLE, "client_secret": "s3cr3t-from-the-idp"}]
        }
    )

    issuer: Annotated[SingleLineText, Field(min_length=8, max_length=500)]
    client_id: Annotated[SingleLineText, Field(min_length=1, max_length=255)]
    client_secret: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1000,
            description="Write-only; omit to keep the stored one. Never returned.",
        ),
    ] = None
    domains: Annotated[
        list[EmailDomain],
        Field(max_length=20, description="Email domains whose people sign in here."),
        AfterValidator(_unique),
    ] = []
    enforce: bool = Field(
        default=False,
        description="Refuse password login and registration for these domains' people.",
    )


class TenantProviderRead(BaseModel):
    """The tenant's provider as its owner sees it (the client secret is never returned)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10",
                    **_TENANT_PROVIDER_EXAMPLE,
                    "redirect_uri": (
                        "https://kibitz.example/auth/sso/0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10"
                        "/callback"
                    ),
                    "created_at": "2026-12-07T12:00:00Z",
                    "updated_at": "2026-12-07T12:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    issuer: str
    client_id: str
    domains: list[str]
    enforce: bool
    redirect_uri: str = Field(description="Register this callback URL at the provider.")
    created_at: UtcDatetime
    updated_at: UtcDatetime


class PasswordSet(BaseModel):
    """Add a password, or change it (then `current_password` is required)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "analytical engine 1843"}]}
    )

    password: Password
    current_password: Annotated[str | None, Field(max_length=128)] = None
