"""Process-level settings of a serving process."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

import pytest

from kibitz.runtime.server import SERVING_GC_THRESHOLDS, tune_garbage_collection


def test_a_serving_process_collects_garbage_less_often_than_pythons_default() -> None:
    default = gc.get_threshold()
    try:
        tune_garbage_collection()
        young, middle, old = gc.get_threshold()
        assert (young, middle, old) == SERVING_GC_THRESHOLDS
        assert young > 700 and middle > 10 and old > 10  # Python's defaults: (700, 10, 10)
    finally:
        gc.set_threshold(*default)


def test_a_module_run_apart_without_a_required_service_address_does_not_start() -> None:
    from kibitz.kit.platform import Platform
    from kibitz.runtime.children import StartupError
    from kibitz.runtime.registry import available_modules
    from kibitz.runtime.server import check_required_peers

    chat = available_modules(["chat"])["chat"]
    assert set(chat.requires) >= {"tenants", "agents"}
    without_tenants = Platform(service_urls={"agents": ["http://127.0.0.1:9"]})
    with pytest.raises(StartupError, match="KIBITZ_TENANTS_URL must be set"):
        check_required_peers(chat, without_tenants)
    both = Platform(service_urls={"agents": ["http://a:1"], "tenants": ["http://t:1"]})
    check_required_peers(chat, both)


async def test_readiness_fails_while_a_required_service_does_not_answer(tmp_path: Path) -> None:
    import httpx

    from kibitz.kit.app import create_service_app
    from kibitz.kit.platform import Module, Platform
    from kibitz.runtime.server import build_app
    from tests.fixtures.processes import free_port
    from tests.fixtures.serving import serving

    peer = create_service_app(name="tenants", platform=Platform(), routers=[])
    async with serving(peer) as peer_url:
        platform = Platform(service_urls={"tenants": [peer_url]})
        module = Module(
            name="demo",
            create_app=lambda p: create_service_app(name="demo", platform=p, routers=[]),
            requires=("tenants",),
        )
        async with serving(build_app(module, platform)) as url, httpx.AsyncClient() as http:
            ready = await http.get(f"{url}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"tenants": "ok"}
    gone = Platform(service_urls={"tenants": [f"http://127.0.0.1:{free_port()}"]})
    async with serving(build_app(module, gone)) as url, httpx.AsyncClient() as http:
        not_ready = await http.get(f"{url}/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == {"tenants": "unavailable"}


@pytest.mark.parametrize("name", ["agents", "auth"])
def test_a_service_run_apart_without_its_encryption_key_does_not_start(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica generating its own key made half the replies unreadable (issue 15,
    finding 11): run apart, the key is a setting, and its absence is one line naming it. Auth's
    seals tenants' SSO client secrets and the sign-in cookie another replica may open."""
    from typer.testing import CliRunner

    from kibitz.cli import app as kibitz

    variable = f"KIBITZ_{name.upper()}_ENCRYPTION_KEY"
    monkeypatch.setenv("KIBITZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KIBITZ_INTERNAL_TOKEN", "t" * 32)
    monkeypatch.setenv("KIBITZ_AUTH_URL", "http://127.0.0.1:9")
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COLUMNS", "400")
    # A port in use: code that did start would end there at once, not serve for ever.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = CliRunner().invoke(kibitz, ["serve", name, "--host", "127.0.0.1", "--port", port])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"kibitz did not start: {variable} must be set: every {name} replica "
        "needs the same value (only kibitz up generates one)"
    )
    assert not (tmp_path / f"{name}-encryption.key").exists()


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("agents", "KIBITZ_AGENTS_ENCRYPTION_KEY"),  # users' stored provider keys
        ("auth", "KIBITZ_AUTH_ENCRYPTION_KEY"),  # tenants' SSO client secrets, sign-in cookies
    ],
)
def test_a_shared_setting_is_looked_for_as_settings_are_read(name: str, variable: str) -> None:
    from kibitz.runtime.children import StartupError
    from kibitz.runtime.registry import available_modules
    from kibitz.runtime.server import check_shared_settings

    module = available_modules([name])[name]
    check_shared_settings(module, {variable.lower(): "a-key"})  # any case
    for blank in ({}, {variable: "  "}):
        with pytest.raises(StartupError, match=f"{variable} must be set: every {name} replica"):
            check_shared_settings(module, blank)


def test_an_unusable_encryption_key_is_a_bad_setting_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.fernet import Fernet
    from pydantic import ValidationError

    from kibitz.kit.settings import invalid_settings
    from kibitz.services.agents.config import AgentsSettings

    good = Fernet.generate_key().decode()
    monkeypatch.setenv("KIBITZ_AGENTS_ENCRYPTION_KEY", f"{good},not-a-key")
    with pytest.raises(ValidationError) as raised:
        AgentsSettings()
    [line] = invalid_settings(raised.value)
    assert line.startswith("KIBITZ_AGENTS_ENCRYPTION_KEY: Value error, key 2 of 2 is not a Fernet")
    assert good not in line and "not-a-key" not in line
