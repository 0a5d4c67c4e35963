"""HTML, scripts and javascript: links in messages are shown as text or inert markup."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser

PAYLOAD = (
    "look <img src=x onerror=alert(1)> and [click me](javascript:alert(2)) "
    'and <script>alert(3)</script> and <a href="javascript:alert(4)">raw link</a>'
)


def test_markup_in_messages_never_runs(kibitz: Kibitz, page: Page, console: Console) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Mirror")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, PAYLOAD)
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    reply = agent_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)

    log = page.get_by_test_id("message-list")
    # No element was created from the payload: no <img>, <script> or javascript: link anywhere.
    expect(log.locator("img")).to_have_count(0)
    expect(log.locator("script")).to_have_count(0)
    expect(page.locator("a[href^='javascript']")).to_have_count(0)
    # The raw HTML shows as literal text, and the markdown link text survives without its href.
    expect(reply).to_contain_text("<img src=x onerror=alert(1)>")
    expect(reply).to_contain_text("<script>")
    expect(reply.get_by_text("click me")).to_be_visible()
    expect(page.get_by_test_id("user-message").last).to_contain_text("<img src=x onerror=alert(1)>")

    page.wait_for_timeout(300)  # any deferred onerror would have fired by now
    assert console.dialogs == []
    assert console.page_errors == []
