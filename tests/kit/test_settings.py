from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from kibitz.kit.settings import (
    PlatformSettings,
    ServiceSettings,
    invalid_settings,
    service_urls_from_env,
)


def test_platform_settings_read_the_kibitz_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBITZ_DATA_DIR", "/tmp/kibitz-x")
    monkeypatch.setenv("KIBITZ_REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = PlatformSettings()
    assert settings.data_dir == Path("/tmp/kibitz-x")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.bus_url == "memory"


def test_a_service_defaults_to_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    url = ServiceSettings().resolved_database_url(data_dir=tmp_path / "d", service="auth")
    assert url == f"sqlite+aiosqlite:///{(tmp_path / 'd' / 'auth.db').resolve()}"
    assert (tmp_path / "d").is_dir()


def test_an_explicit_database_url_wins(tmp_path: Path) -> None:
    settings = ServiceSettings(database_url="postgresql+asyncpg://postgres@127.0.0.1/x")
    assert settings.resolved_database_url(data_dir=tmp_path, service="auth").startswith(
        "postgresql"
    )


def test_service_urls_split_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBITZ_AUTH_URL", "http://a:1/, http://b:2")
    monkeypatch.delenv("KIBITZ_CHAT_URL", raising=False)
    assert service_urls_from_env(["auth", "chat"]) == {"auth": ["http://a:1", "http://b:2"]}


def test_a_bad_setting_is_named_by_its_variable_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIBITZ_LOG_JSON", "s3cret-looking-value")
    with pytest.raises(ValidationError) as caught:
        PlatformSettings()
    lines = invalid_settings(caught.value)
    assert len(lines) == 1
    assert lines[0].startswith("KIBITZ_LOG_JSON: Input should be a valid boolean")
    assert "s3cret" not in lines[0]


def test_an_error_that_is_not_about_settings_is_left_alone() -> None:
    class Payload(BaseModel):
        count: int

    with pytest.raises(ValidationError) as caught:
        Payload.model_validate({"count": "many"})
    assert invalid_settings(caught.value) == []
