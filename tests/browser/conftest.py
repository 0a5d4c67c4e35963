"""Browser fixtures: a real `kibitz up` serving the built web app, and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.browser.kibitz_app import Kibitz
from tests.fixtures.all_in_one import kibitz_up

REPO = Path(__file__).resolve().parents[2]
WEB_DIST = REPO / "web" / "dist"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Never download a browser: drive the distribution's Chromium, quietly.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


@contextmanager
def run_kibitz(
    data_dir: Path, extra_env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[Kibitz]:
    """`kibitz up` on `port` (or a free one), serving web/dist, with its data in `data_dir`."""
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(
            "web/dist is not built: run `cd web && npm ci && npm run build` (make web) first"
        )
    env = {
        "KIBITZ_WEB_DIST": str(WEB_DIST),
        # Many users register from one IP in a test run.
        "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "10000",
        # 60 ms per echoed word: slow enough to watch a reply grow, fast enough for a test.
        "KIBITZ_AGENTS_ECHO_WORD_DELAY_MS": "60",
        **(extra_env or {}),
    }
    with kibitz_up(data_dir, env, port=port) as url:
        yield Kibitz(url=url, data_dir=data_dir)


@pytest.fixture(scope="package")
def kibitz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kibitz]:
    """The stack every browser test shares (each test registers its own users)."""
    with run_kibitz(tmp_path_factory.mktemp("kibitz-data")) as running:
        yield running


@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Console:
    """JavaScript errors seen on a page (uncaught exceptions and dialogs)."""

    page_errors: list[str]
    dialogs: list[str]


@pytest.fixture
def context(browser: Browser, kibitz: Kibitz) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=kibitz.url, viewport=DESKTOP, color_scheme="light")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def console(page: Page) -> Console:
    """Collect uncaught errors and dismiss (and record) any alert/confirm dialog."""
    seen = Console(page_errors=[], dialogs=[])
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return seen


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (gitignored), for a reviewer to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
