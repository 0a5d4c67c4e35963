"""Live replies survive a network drop, and a second tab follows a reply already in flight."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message, words

pytestmark = pytest.mark.browser


def _every_word_once(text: str, count: int) -> bool:
    return re.findall(r"\bw\d+\b", text) == [f"w{index}" for index in range(1, count + 1)]


def test_going_offline_mid_reply_says_so_and_the_reply_still_completes(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Steady")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, words(120, "w"))
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    reply = agent_messages(page).last
    expect(reply).to_contain_text("w5")

    context.set_offline(True)
    expect(page.get_by_text(re.compile("You are offline"))).to_be_visible()
    page.wait_for_timeout(1000)
    context.set_offline(False)
    expect(page.get_by_text(re.compile("You are offline"))).to_have_count(0)

    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    assert _every_word_once(reply.inner_text(), 120)


def test_a_second_tab_follows_a_reply_already_streaming(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Broadcaster")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, words(150, "w"))
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    expect(agent_messages(page).last).to_contain_text("w3")
    chat_path = "/" + page.url.split("/", 3)[3]

    other = context.new_page()
    # Same browser, same httpOnly refresh cookie: the second tab restores the session itself.
    with other.expect_request(re.compile(r"/chat/stream/"), timeout=30_000) as followed:
        other.goto(chat_path)
    assert followed.value.method == "GET"
    follower = agent_messages(other).last
    # The second tab sees the reply grow too, then complete, with every word once.
    expect(follower).to_have_attribute("data-status", "streaming")
    expect(follower).to_have_attribute("data-status", "complete", timeout=30_000)
    assert _every_word_once(follower.inner_text(), 150)
    other.close()
