"""Request and response shapes of the API key routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kibitz.kit.inputs import SingleLineText
from kibitz.services.auth.schemas import UtcDatetime

_KEY_EXAMPLE = {
    "id": "0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10",
    "name": "CI pipeline",
    "prefix": "kbz_q5b3n8Jx",
    "created_at": "2026-12-07T12:00:00Z",
    "expires_at": None,
}

_SECRET_EXAMPLE = "kbz_q5b3n8Jx0bq1mW2t9r6VYd4kHc7LzA1pFo2uEw3sNg8"  # noqa: S105 - an example


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


KeyName = Annotated[SingleLineText, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
# `kbz_` + token_urlsafe(32) is 47 characters; anything much longer is not ours.
KeyValue = Annotated[str, Field(min_length=1, max_length=200)]


class ApiKeyCreate(BaseModel):
    """A new key: a name to recognise it by, and optionally when it stops working."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "CI pipeline", "expires_at": None}]},
    )

    name: KeyName
    expires_at: UtcDatetime | None = None


class ApiKeyCreated(BaseModel):
    """The new key, with the key itself: this is the only time it is shown."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_KEY_EXAMPLE, "key": _SECRET_EXAMPLE}]}
    )

    id: uuid.UUID
    name: str
    prefix: str
    key: str = Field(description="The API key. Store it now: it cannot be shown again.")
    created_at: UtcDatetime
    expires_at: UtcDatetime | None


class ApiKeyRead(BaseModel):
    """A key as lists show it: never the key itself."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_KEY_EXAMPLE,
                    "last_used_at": "2026-12-07T12:05:00Z",
                    "user_id": "0193a4f2-6c1f-7c2d-8e52-3a1f9d8b6c21",
                    "user_email": "ada@example.com",
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    prefix: str
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    expires_at: UtcDatetime | None
    user_id: uuid.UUID
    user_email: str


class ApiKeyPage(BaseModel):
    """A page of keys, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": ApiKeyRead.model_json_schema()["examples"], "next_cursor": None}]
        }
    )

    items: list[ApiKeyRead]
    next_cursor: str | None


ListScope = Literal["mine", "tenant"]


class ApiKeyExchangeRequest(BaseModel):
    """Internal: a key the gateway received."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"key": _SECRET_EXAMPLE}]},
    )

    key: KeyValue


class ApiKeyIdentity(BaseModel):
    """Internal: who the key acts for, and an access token to act with."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": _KEY_EXAMPLE["id"],
                    "user_id": "0193a4f2-6c1f-7c2d-8e52-3a1f9d8b6c21",
                    "tenant_id": "0193a4f2-6c1f-7c2d-8e52-3a1f9d8b6c22",
                    "role": "member",
                    "access_token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
                    "expires_in": 900,
                    "key_expires_at": None,
                }
            ]
        }
    )

    key_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    access_token: str
    expires_in: int = Field(description="Seconds until the access token expires.")
    key_expires_at: UtcDatetime | None = Field(
        description="When the key itself stops working: nobody may use it past then."
    )
