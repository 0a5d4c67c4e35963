"""A user who lets the agent title new chats sees the proposed title in the sidebar and header."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser

# The echo agent repeats the last user message: asked for a title, it repeats the request,
# whose first words become the title.
PROPOSED = re.compile(r"^Propose a title for this conversation")


def test_an_opted_in_users_new_chat_takes_the_title_its_agent_proposes(
    kibitz: Kibitz, page: Page
) -> None:
    kibitz.require("/users/me", "the users service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Namer")
    login(page, account)
    navigate(page, "/settings")
    toggle = page.get_by_role("checkbox", name="Let the agent title new chats")
    expect(toggle).not_to_be_checked()
    toggle.check()
    expect(page.get_by_text("Preferences saved.")).to_be_visible()
    expect(toggle).to_be_checked()
    assert kibitz.api("GET", "/users/me", account).json()["preferences"]["propose_titles"] is True

    navigate(page, "/chat")
    send_message(page, "how do sourdough starters work")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete", timeout=30_000)

    # The title itself, not the link's whole text (it ends with when the chat was last used).
    chats = page.get_by_role("list", name="Chats").locator(".chat-list__title")
    expect(chats).to_have_count(1)
    expect(chats.first).to_have_text(PROPOSED, timeout=20_000)
    expect(page.locator(".chat-header__title")).to_have_text(PROPOSED)
    chat_id = page.url.rsplit("/", 1)[-1]
    stored = kibitz.api("GET", f"/chat/chats/{chat_id}", account).json()["title"]
    assert PROPOSED.match(stored) and len(stored) <= 80


def test_without_the_preference_a_new_chat_keeps_its_first_words(
    kibitz: Kibitz, page: Page
) -> None:
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Plain")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, "what is a good rye ratio")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete", timeout=30_000)
    # The title itself, not the link's whole text (it ends with when the chat was last used).
    chats = page.get_by_role("list", name="Chats").locator(".chat-list__title")
    expect(chats.first).to_have_text("what is a good rye ratio")
