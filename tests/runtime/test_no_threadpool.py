from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.registry import available_modules


def _routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _calls(dependant: Any) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    # A callable instance (a security scheme, say) counts by its class's __call__.
    target = call if inspect.isfunction(call) or inspect.ismethod(call) else type(call).__call__
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


@pytest.mark.parametrize("name", list(available_modules()))
def test_no_route_or_dependency_runs_in_the_thread_pool(name: str, tmp_path: Path) -> None:
    """FastAPI runs a plain `def` route or dependency on a worker thread: a thread hand-off
    on every request, which costs milliseconds behind a busy event loop."""
    platform = Platform(settings=PlatformSettings(data_dir=tmp_path))
    app = available_modules([name])[name].create_app(platform)
    blocking = [
        f"{route.path}: {call.__qualname__}"
        for route in _routes(app.routes)
        if isinstance(route, APIRoute | APIWebSocketRoute)
        for call in _calls(route.dependant)
        if not _is_async(call)
    ]
    assert blocking == []
