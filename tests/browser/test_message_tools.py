"""What a person does with a message once it is there: copy it, read highlighted code, unfold it."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import agent_messages, login, navigate, words

pytestmark = pytest.mark.browser

CODE = 'def greet(name):\n    return f"hi {name}"  # <img src=x onerror=alert(1)>\n'
FENCED = f"Here:\n\n```python\n{CODE}```\n"


def _chat_with(kibitz: Kibitz, account: Account, content: str) -> str:
    agent = kibitz.create_echo_agent(account, "Coder")
    sent = kibitz.api(
        "POST", "/chat/send", account, json={"agent_id": agent["id"], "content": content}
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["chat_id"])


def _clipboard(page: Page) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


@pytest.fixture
def clipboard(context: BrowserContext) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])


def test_code_in_a_reply_is_highlighted_labelled_and_copied_with_one_tap(
    kibitz: Kibitz, page: Page, console: Console, clipboard: None
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    chat_id = _chat_with(kibitz, account, FENCED)
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    reply = agent_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)

    block = reply.get_by_test_id("code-block")
    expect(block.locator(".md-code__language")).to_have_text("python")
    expect(block.locator(".hljs-keyword").first).to_have_text("def")
    expect(block.locator(".hljs-string").first).to_contain_text("hi {name}")
    # The markup inside the code stays text.
    expect(page.get_by_test_id("message-list").locator("img")).to_have_count(0)
    copy = block.get_by_role("button", name="Copy code")
    # Visible without hovering (touch screens cannot hover).
    page.mouse.move(0, 0)
    expect(copy).to_be_visible()
    assert copy.evaluate("button => getComputedStyle(button).opacity") == "1"
    copy.click()
    expect(copy).to_have_text("Copied")
    assert _clipboard(page) == CODE
    assert console.page_errors == []


def test_every_finished_message_can_be_copied(kibitz: Kibitz, page: Page, clipboard: None) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    chat_id = _chat_with(kibitz, account, "copy **these** words")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    reply = agent_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)

    reply.get_by_role("button", name="Copy message").click()
    assert _clipboard(page) == "copy **these** words"
    page.get_by_test_id("user-message").last.get_by_role("button", name="Copy message").click()
    assert _clipboard(page) == "copy **these** words"


def test_a_long_user_message_is_collapsed_until_show_more(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    long_text = words(150, "longword")
    chat_id = _chat_with(kibitz, account, long_text)
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    mine = page.get_by_test_id("user-message").last
    text = mine.locator(".message__text")
    more = mine.get_by_role("button", name="Show more")
    expect(more).to_have_attribute("aria-expanded", "false")
    assert text.evaluate("p => p.scrollHeight > p.clientHeight")
    more.click()
    expect(mine.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    assert text.evaluate("p => p.scrollHeight <= p.clientHeight")
    expect(text).to_contain_text("longword150")


def test_a_short_user_message_has_no_show_more(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    chat_id = _chat_with(kibitz, account, "short and sweet")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    expect(page.get_by_test_id("user-message").last).to_contain_text("short and sweet")
    expect(page.get_by_role("button", name="Show more")).to_have_count(0)
