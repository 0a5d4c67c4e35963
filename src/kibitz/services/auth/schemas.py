"""Request and response shapes of the auth routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

from kibitz.kit.inputs import SingleLineText

MAX_EMAIL_LENGTH = 254


def _normalise_email(value: object) -> object:
    if isinstance(value, str):
        value = value.strip().lower()
        if len(value) > MAX_EMAIL_LENGTH:
            raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    return value


def _strip_or_none(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    return value


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Normalised (trimmed, lower-case) so that uniqueness and login ignore case.
Email = Annotated[
    EmailStr, BeforeValidator(_normalise_email), AfterValidator(lambda value: value.lower())
]
# ASVS 5.0: at least 8 and at most 128 characters, any Unicode, no composition rules.
Password = Annotated[str, Field(min_length=8, max_length=128)]
# Blank means absent; the length cap applies to the text, never to None.
FullName = Annotated[
    Annotated[SingleLineText, Field(max_length=200)] | None,
    BeforeValidator(_strip_or_none),
]
TenantName = Annotated[
    Annotated[SingleLineText, Field(max_length=100)] | None,
    BeforeValidator(_strip_or_none),
]
InviteCode = Annotated[
    Annotated[SingleLineText, Field(max_length=128)] | None,
    BeforeValidator(_strip_or_none),
]
# token_urlsafe(32) is 43 characters; anything much longer is not ours.
RefreshTokenValue = Annotated[str, Field(min_length=1, max_length=256)]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]

_USER_EXAMPLE: dict[str, Any] = {
    "id": "0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10",
    "email": "ada@example.com",
    "tenant_id": "0193a4f2-6c1f-7c2d-8e52-3a1f9d8b6c21",
    "role": "owner",
    "full_name": "Ada Lovelace",
    "created_at": "2026-11-26T14:00:00Z",
}
_TOKENS_EXAMPLE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjRmM2EifQ.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
    "refresh_token": "q5b3n8Jx0bq1mW2t9r6VYd4kHc7LzA1pFo2uEw3sNg8",
    "token_type": "bearer",
    "expires_in": 900,
}


class RegisterRequest(BaseModel):
    """A new account: a new tenant, or an existing one with an invite code."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "analytical engine 1843",
                    "full_name": "Ada Lovelace",
                    "tenant_name": "Analytical Engines Ltd",
                }
            ]
        }
    )

    email: Email
    password: Password
    full_name: FullName = None
    tenant_name: TenantName = None
    invite_code: InviteCode = None


class LoginRequest(BaseModel):
    """Credentials."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "analytical engine 1843"}]
        }
    )

    email: Email
    # No minimum here: a login checks a password, it does not set one.
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshRequest(BaseModel):
    """A refresh token; browsers may send `{}` and let the `kibitz_refresh` cookie carry it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": _TOKENS_EXAMPLE["refresh_token"]}]}
    )

    refresh_token: RefreshTokenValue | None = None


class UserRead(BaseModel):
    """A user as register and login return it."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_USER_EXAMPLE]})

    id: uuid.UUID
    email: str
    tenant_id: uuid.UUID
    role: str
    full_name: str | None
    created_at: UtcDatetime


class LinkedIdentityRead(BaseModel):
    """An identity-provider account linked to the caller."""

    provider_id: str
    provider_name: str
    email: str
    linked_at: UtcDatetime


class MeRead(BaseModel):
    """The caller, as `GET /auth/me` returns it."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{k: v for k, v in _USER_EXAMPLE.items() if k != "full_name"}]
        },
    )

    id: uuid.UUID
    email: str
    tenant_id: uuid.UUID
    role: str
    created_at: UtcDatetime
    has_password: bool = Field(default=True, description="Whether a password is a way in.")
    identities: list[LinkedIdentityRead] = Field(
        default=[], description="Identity-provider accounts linked to this one."
    )


class InternalUserRead(UserRead):
    """A user as other kibitz services read it."""


class TokenPair(BaseModel):
    """An access token (JWT, 15 min) and a refresh token (opaque, single use)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TOKENS_EXAMPLE]})

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, no secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class AuthenticatedSession(TokenPair):
    """The token pair and the user it belongs to."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user": _USER_EXAMPLE, **_TOKENS_EXAMPLE}]}
    )

    user: UserRead


class Jwks(BaseModel):
    """The public signing keys (RFC 7517)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                            "kid": "4f3a9c2e8b1d4a6f9e0c7b5a3d2f1e0a",
                            "alg": "EdDSA",
                            "use": "sig",
                        }
                    ]
                }
            ]
        }
    )

    keys: list[dict[str, Any]]


class SessionRevocationRead(BaseModel):
    """A revoked session and when its last access token expires anyway."""

    session_id: uuid.UUID
    expires_at: datetime


class SessionRevocationPage(BaseModel):
    """Revoked sessions newer than asked, and the time of the answer (the next `since`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "now": "2026-12-07T16:00:00Z",
                    "items": [
                        {
                            "session_id": "01938a7e-5a2b-7c3d-9e4f-1a2b3c4d5e6f",
                            "expires_at": "2026-12-07T16:14:30Z",
                        }
                    ],
                }
            ]
        }
    )

    now: datetime
    items: list[SessionRevocationRead]
