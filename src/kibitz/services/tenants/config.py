"""Settings of the tenants service (`KIBITZ_TENANTS_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import PositiveInt
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings


class TenantsSettings(ServiceSettings):
    """What an operator may tune about the tenants service."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_TENANTS_", extra="ignore")

    # The plan catalogue (JSON, see plans.json in this package); unset: the shipped defaults.
    plans_file: Path | None = None
    # 7 days: long enough to reach a colleague on holiday, short enough that a leaked code dies.
    invite_ttl_hours: PositiveInt = 7 * 24
    # 2 days: a reservation's key only has to catch a retry of the same send (seconds later);
    # past that its row is deleted, hourly.
    reservation_key_ttl_hours: PositiveInt = 48
