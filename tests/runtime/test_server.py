"""Process-level settings of a serving process."""

from __future__ import annotations

import gc
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
