"""Scrolling back through a long chat loads older pages."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def _send_and_wait(kibitz: Kibitz, account: Account, body: dict[str, str]) -> str:
    sent = kibitz.api("POST", "/chat/send", account, json=body)
    assert sent.status_code == 201, sent.text
    chat_id = str(sent.json()["chat_id"])
    reply_id = sent.json()["agent_message"]["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        history = kibitz.api("GET", f"/chat/history/{chat_id}", account, params={"limit": 5}).json()
        statuses = {m["id"]: m["status"] for m in history["messages"]}
        if statuses.get(reply_id) not in (None, "pending", "streaming"):
            return chat_id
        time.sleep(0.05)
    raise AssertionError("the reply did not finish")


def test_scrolling_to_the_top_loads_older_messages(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    agent = kibitz.create_echo_agent(account, "Long talker")
    chat_id = _send_and_wait(kibitz, account, {"agent_id": agent["id"], "content": "message-01"})
    for index in range(2, 21):
        _send_and_wait(kibitz, account, {"chat_id": chat_id, "content": f"message-{index:02d}"})

    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    users = page.get_by_test_id("user-message")
    expect(users.last).to_contain_text("message-20")
    # 40 messages, 30 per page: the oldest are not loaded yet.
    expect(users.filter(has_text="message-01")).to_have_count(0)

    expect(page.get_by_role("button", name="Load older messages")).to_be_visible()
    # Reaching the top loads the previous page by itself.
    page.get_by_test_id("message-list").evaluate("el => { el.scrollTop = 0; }")
    expect(users.filter(has_text="message-01")).to_have_count(1)
    expect(page.get_by_text("This is the start of the conversation.")).to_be_visible()
