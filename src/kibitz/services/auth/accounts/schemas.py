"""Request shapes of ending an account."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class AccountDeletion(BaseModel):
    """The password confirms the deletion (an account without one: a recent sign-in does)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "analytical engine 1843"}]}
    )

    password: Annotated[str | None, Field(max_length=128)] = None
