"""The theme preference is saved to the profile and applied."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def test_choosing_the_dark_theme_saves_it_and_applies_it(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/users/me", "the users service")
    account = kibitz.register()
    login(page, account)
    navigate(page, "/settings")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")

    page.get_by_text("Dark", exact=True).click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.get_by_text("Preferences saved.")).to_be_visible()
    profile = kibitz.api("GET", "/users/me", account).json()
    assert profile["preferences"]["theme"] == "dark"
