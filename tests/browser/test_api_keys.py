"""A person creates an API key in /settings (shown once, copied), uses it with the
OpenAI-compatible endpoint, and revokes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def test_an_api_key_is_shown_once_works_from_code_and_stops_when_revoked(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    account = kibitz.register()
    agent = kibitz.create_echo_agent(account, name="Parrot")
    login(page, account)
    navigate(page, "/settings")
    panel = page.locator("#api-keys")
    expect(panel.get_by_text("No API keys yet")).to_be_visible()
    expect(panel.get_by_test_id("api-snippet")).to_contain_text(f"{kibitz.url}/v1")

    panel.get_by_label("Key name").fill("Laptop script")
    panel.get_by_role("button", name="Create key").click()
    shown = panel.get_by_test_id("new-api-key")
    key = shown.locator("code").inner_text()
    assert key.startswith("kbz_")
    shown.get_by_role("button", name="Copy the API key").click()
    expect(shown.get_by_role("button", name="Copy the API key")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    row = panel.get_by_role("row").filter(has_text="Laptop script")
    expect(row).to_contain_text(key[:12])

    bearer = {"Authorization": f"Bearer {key}"}
    models = kibitz.api("GET", "/v1/models", headers=bearer)
    assert models.status_code == 200, models.text
    assert [model["id"] for model in models.json()["data"]] == [agent["id"]]
    reply = kibitz.api(
        "POST",
        "/v1/chat/completions",
        headers=bearer,
        json={"model": "Parrot", "messages": [{"role": "user", "content": "polly wants code"}]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "polly wants code"

    # Shown once: after a reload only the prefix remains.
    page.reload()
    expect(row).to_be_visible()
    expect(row).to_contain_text("Never")  # expiry
    assert key not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke Laptop script").click()
    expect(panel.get_by_text("No API keys yet")).to_be_visible()
    assert kibitz.api("GET", "/v1/models", headers=bearer).status_code == 401
