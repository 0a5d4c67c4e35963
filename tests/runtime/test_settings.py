"""Every module's numeric settings carry bounds, so a value that would break a service is
refused at start-up with its variable named (`kibitz up` prints that line; see tests/e2e)."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from kibitz.gateway.config import GatewaySettings
from kibitz.kit.settings import invalid_settings
from kibitz.services.agents.config import AgentsSettings
from kibitz.services.auth.config import AuthSettings
from kibitz.services.chat.config import ChatSettings
from kibitz.services.tenants.config import TenantsSettings
from kibitz.services.users.config import UsersSettings

SETTINGS: list[type[BaseSettings]] = [
    GatewaySettings,
    AgentsSettings,
    AuthSettings,
    ChatSettings,
    TenantsSettings,
    UsersSettings,
]


def _lower_bound(field: FieldInfo) -> float | None:
    """The field's `ge`/`gt` bound (also inside `X | None`), or None when it has none."""
    metadata = list(field.metadata)
    for argument in typing.get_args(field.annotation):
        metadata += getattr(argument, "__metadata__", ())
    for constraint in metadata:
        bound = getattr(constraint, "ge", getattr(constraint, "gt", None))
        if bound is not None:
            return float(bound)
    return None


def _numeric_fields() -> list[tuple[type[BaseSettings], str, FieldInfo]]:
    found = []
    for settings_class in SETTINGS:
        for name, field in settings_class.model_fields.items():
            kinds = {field.annotation, *typing.get_args(field.annotation)}
            kinds |= {typing.get_args(kind)[0] for kind in kinds if typing.get_args(kind)}
            if kinds & {int, float}:
                found.append((settings_class, name, field))
    return found


def _variable(settings_class: type[BaseSettings], name: str) -> str:
    return f"{settings_class.model_config.get('env_prefix')}{name}".upper()


NUMERIC_FIELDS = _numeric_fields()


@pytest.mark.parametrize(
    ("settings_class", "name", "field"),
    NUMERIC_FIELDS,
    ids=[_variable(cls, name) for cls, name, _ in NUMERIC_FIELDS],
)
def test_a_numeric_setting_refuses_values_below_its_bound(
    monkeypatch: pytest.MonkeyPatch,
    settings_class: type[BaseSettings],
    name: str,
    field: FieldInfo,
) -> None:
    bound = _lower_bound(field)
    assert bound is not None, f"{name} has no lower bound"
    variable = _variable(settings_class, name)
    monkeypatch.setenv(variable, "-1")
    with pytest.raises(ValidationError) as caught:
        settings_class()
    assert [line.split(":")[0] for line in invalid_settings(caught.value)] == [variable]


def test_zero_turns_off_what_it_should_and_is_refused_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIBITZ_CHAT_STOP_WAIT_SECONDS", "0")  # stop: do not wait
    monkeypatch.setenv("KIBITZ_AGENTS_PLAN_CACHE_SECONDS", "0")
    assert ChatSettings().stop_wait_seconds == 0
    assert AgentsSettings().plan_cache_seconds == 0
    monkeypatch.setenv("KIBITZ_CHAT_MAX_CONCURRENT_GENERATIONS", "0")
    with pytest.raises(ValidationError):
        ChatSettings()
