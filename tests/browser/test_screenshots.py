"""Screenshots of every page, light and dark, desktop and phone, for a reviewer (artifacts/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE
from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser


def _shoot(page: Page, directory: Path, name: str) -> None:
    page.wait_for_timeout(250)  # let transitions settle
    page.screenshot(path=str(directory / f"{name}.png"), full_page=False)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_renders_in_both_themes(
    kibitz: Kibitz,
    browser: Browser,
    artifacts: Path,
    theme: Literal["light", "dark"],
    device: str,
) -> None:
    viewport = DESKTOP if device == "desktop" else PHONE
    context = browser.new_context(base_url=kibitz.url, viewport=viewport, color_scheme=theme)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    prefix = f"{device}-{theme}"
    try:
        page.goto("/login")
        expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
        _shoot(page, artifacts, f"{prefix}-login")
        page.goto("/register")
        expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
        _shoot(page, artifacts, f"{prefix}-register")

        account = kibitz.register(tenant_name="Analytical Engines")
        has_agents = kibitz.api("GET", "/agents/my").status_code != 503
        has_chat = kibitz.api("GET", "/chat/chats").status_code != 503
        if has_agents:
            kibitz.create_echo_agent(account, "Research assistant")
        login(page, account)
        _shoot(page, artifacts, f"{prefix}-dashboard")
        if device == "phone":
            page.get_by_role("button", name="Open menu").click()
            _shoot(page, artifacts, f"{prefix}-menu")
            page.get_by_role("button", name="Close menu").click()
        navigate(page, "/agents")
        _shoot(page, artifacts, f"{prefix}-agents")
        if has_agents:
            page.get_by_role("button", name="New agent").first.click()
            expect(page.get_by_role("dialog")).to_be_visible()
            _shoot(page, artifacts, f"{prefix}-agent-form")
            page.keyboard.press("Escape")
        navigate(page, "/settings")
        _shoot(page, artifacts, f"{prefix}-settings")
        navigate(page, "/chat")
        _shoot(page, artifacts, f"{prefix}-new-chat")
        if has_agents and has_chat:
            send_message(
                page,
                "Show me **markdown**: a list\n\n- one\n- two\n\n```python\nprint('hello')\n```",
            )
            page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
            expect(agent_messages(page).last).to_have_attribute(
                "data-status", "complete", timeout=30_000
            )
            _shoot(page, artifacts, f"{prefix}-chat")
        navigate(page, "/no-such-page")
        _shoot(page, artifacts, f"{prefix}-not-found")
        assert errors == []
    finally:
        context.close()
