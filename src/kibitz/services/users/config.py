"""Settings of the users service (`KIBITZ_USERS_…`)."""

from __future__ import annotations

from pydantic import NonNegativeFloat
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings


class UsersSettings(ServiceSettings):
    """What an operator may tune about the users service."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_USERS_", extra="ignore")

    # 30 s: a plan change also arrives as an event; this bounds staleness if one is missed.
    subscription_cache_seconds: NonNegativeFloat = 30.0
