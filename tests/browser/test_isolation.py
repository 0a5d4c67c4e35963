"""Another tenant's chat URL shows not-found, never the chat."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def test_a_user_of_another_tenant_sees_not_found_for_my_chat(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    owner = kibitz.register()
    agent = kibitz.create_echo_agent(owner, "Private bot")
    sent = kibitz.api(
        "POST", "/chat/send", owner, json={"agent_id": agent["id"], "content": "top secret plans"}
    )
    assert sent.status_code == 201, sent.text
    chat_id = sent.json()["chat_id"]

    stranger = kibitz.register()
    login(page, stranger)
    navigate(page, f"/chat/{chat_id}")

    expect(page.get_by_text("Chat not found")).to_be_visible()
    expect(page.get_by_text("top secret plans")).to_have_count(0)
