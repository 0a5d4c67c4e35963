"""The web UI: files, long-cached hashed assets, SPA fallback, and a page when it is not built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.gateway.conftest import Harness, start_harness

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
async def with_web(tmp_path: Path) -> AsyncIterator[Harness]:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root>kibitz app</div>")
    (dist / "assets" / "index-abc123.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the dist folder")
    async with start_harness(
        services=("auth", "chat"), env={"KIBITZ_WEB_DIST": str(dist)}
    ) as running:
        yield running


async def test_the_app_is_served_at_the_root(with_web: Harness) -> None:
    response = await with_web.http.get("/", headers=HTML)
    assert response.status_code == 200
    assert "kibitz app" in response.text
    assert response.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_a_year(with_web: Harness) -> None:
    response = await with_web.http.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=31536000" in response.headers["cache-control"]
    other = await with_web.http.get("/favicon.svg")
    assert other.status_code == 200 and "immutable" not in other.headers["cache-control"]


@pytest.mark.parametrize(
    "path", ["/login", "/dashboard", "/chat/0190a1b2-c3d4", "/agents", "/settings"]
)
async def test_page_navigations_get_the_app_shell(with_web: Harness, path: str) -> None:
    response = await with_web.http.get(path, headers=HTML)
    assert response.status_code == 200
    assert "kibitz app" in response.text


async def test_api_calls_on_page_paths_still_reach_the_service(with_web: Harness) -> None:
    response = await with_web.http.get(
        "/chat/echo", headers={**with_web.auth(), "Accept": "application/json"}
    )
    assert response.json()["path"] == "/chat/echo"


async def test_unknown_non_page_paths_are_a_404_problem(with_web: Harness) -> None:
    response = await with_web.http.get("/assets/missing.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_files_outside_the_dist_folder_are_not_served(with_web: Harness) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"):
        response = await with_web.http.get(path)
        assert "outside the dist folder" not in response.text


async def test_without_a_build_the_root_explains_how_to_build_the_ui(tmp_path: Path) -> None:
    env = {"KIBITZ_WEB_DIST": str(tmp_path / "missing")}
    async with start_harness(services=("auth",), env=env) as running:
        response = await running.http.get("/", headers=HTML)
        assert response.status_code == 200
        assert "npm run build" in response.text
        assert response.headers["content-type"].startswith("text/html")
