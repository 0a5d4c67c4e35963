"""Request and response shapes of the users routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl

from kibitz.kit.inputs import SingleLineText

MAX_URL_LENGTH = 2048
MAX_SELECTED_AGENTS = 100


def _strip_or_none(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    return value


def _https_only(value: str | None) -> str | None:
    if value is None:
        return None
    url = HttpUrl(value)
    if url.scheme != "https":
        raise ValueError("must be an https URL")
    if url.username or url.password:
        raise ValueError("must not carry credentials")
    return str(url)


def _unique(values: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat an agent")
    return values


FullName = Annotated[
    Annotated[SingleLineText, Field(max_length=200)] | None, BeforeValidator(_strip_or_none)
]
AvatarUrl = Annotated[
    Annotated[str, Field(max_length=MAX_URL_LENGTH)] | None,
    BeforeValidator(_strip_or_none),
    AfterValidator(_https_only),
]
# BCP 47-ish: "en", "pt-BR", "zh-Hant-TW".
Language = Annotated[
    str, Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
]


class PreferencesPatch(BaseModel):
    """Preference keys to change; a key set to null is removed; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    theme: Literal["light", "dark", "system"] | None = None
    default_agent_id: uuid.UUID | None = None
    selected_agent_ids: (
        Annotated[list[uuid.UUID], Field(max_length=MAX_SELECTED_AGENTS), AfterValidator(_unique)]
        | None
    ) = None
    language: Language | None = None
    # Opt-in: after a new chat's first reply its agent proposes the chat's title (metered).
    propose_titles: bool | None = None


class PreferencesRead(BaseModel):
    """A user's stored preferences (the keys of `PreferencesPatch` that were set)."""

    preferences: dict[str, Any]


class ProfileUpdate(BaseModel):
    """Any of the profile's editable fields."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName = None
    avatar_url: AvatarUrl = None
    preferences: PreferencesPatch | None = None


class Subscription(BaseModel):
    """The user's tenant and its plan, as the tenants service reports it."""

    tenant_id: uuid.UUID
    tenant_name: str
    plan: str
    limits: dict[str, Any]


class ProfileRead(BaseModel):
    """A profile as `GET /users/me` answers it."""

    id: uuid.UUID
    auth_user_id: uuid.UUID
    email: str
    full_name: str | None
    avatar_url: str | None
    preferences: dict[str, Any]
    subscription: Subscription | None
