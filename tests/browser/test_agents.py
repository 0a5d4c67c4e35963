"""Agents page: edit, try (a non-streamed reply) and delete an agent; models the plan allows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def test_an_agent_can_be_edited_tried_and_deleted(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/agents/my", "the agents service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Draft name")
    login(page, account)
    navigate(page, "/agents")
    card = page.get_by_test_id("agent-card").filter(has_text="Draft name")

    card.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Final name")
    dialog.get_by_role("button", name="Save changes").click()
    card = page.get_by_test_id("agent-card").filter(has_text="Final name")
    expect(card).to_be_visible()
    assert kibitz.api("GET", "/agents/my", account).json()["items"][0]["name"] == "Final name"

    card.get_by_role("button", name="Try").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Message").fill("ping from the try panel")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.get_by_test_id("try-reply")).to_contain_text("ping from the try panel")
    dialog.get_by_role("button", name="Close").click()

    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete agent").click()
    expect(page.get_by_text("No agents yet")).to_be_visible()
    assert kibitz.api("GET", "/agents/my", account).json()["items"] == []


def test_the_agents_page_shows_which_models_the_plan_allows(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/agents/providers", "the agents service")
    account = kibitz.register()
    providers = kibitz.api("GET", "/agents/providers", account).json()["items"]
    login(page, account)
    navigate(page, "/agents")
    models = page.locator(".models")
    for provider in providers:
        for model in provider["models"]:
            expect(models.get_by_text(model["id"], exact=True)).to_be_visible()
    locked = [m["id"] for p in providers for m in p["models"] if not m["allowed"]]
    if locked:
        expect(page.get_by_role("link", name="Compare plans")).to_be_visible()
