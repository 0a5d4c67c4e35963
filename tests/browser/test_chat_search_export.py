"""Finding a message from the sidebar's search and taking a chat away as a file."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import agent_messages, login, navigate

pytestmark = pytest.mark.browser


def _chat_with(kibitz: Kibitz, account: Account, agent_id: str, content: str) -> str:
    sent = kibitz.api(
        "POST", "/chat/send", account, json={"agent_id": agent_id, "content": content}
    )
    assert sent.status_code == 201, sent.text
    chat_id = str(sent.json()["chat_id"])
    reply_id = sent.json()["agent_message"]["id"]
    deadline = time.monotonic() + 30
    while True:
        history = kibitz.api("GET", f"/chat/history/{chat_id}", account).json()
        if any(m["id"] == reply_id and m["status"] == "complete" for m in history["messages"]):
            return chat_id
        assert time.monotonic() < deadline, "the reply did not finish"
        time.sleep(0.1)


def test_search_in_the_sidebar_opens_the_chat_at_the_message(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/search?q=x", "chat search")
    account = kibitz.register()
    agent = kibitz.create_echo_agent(account)
    wanted = _chat_with(kibitz, account, agent["id"], "Where do pelicans spend the winter?")
    _chat_with(kibitz, account, agent["id"], "Something about <b>teapots</b> instead")
    login(page, account)

    box = page.get_by_role("searchbox", name="Search messages")
    box.fill("pelic")  # the last word matches as a prefix, as one types
    hits = page.get_by_test_id("search-hit")
    expect(hits).to_have_count(2)  # the question and the echoed reply
    expect(hits.first.locator("mark")).to_have_text("pelicans")
    expect(hits.first).to_contain_text("Where do pelicans spend the winter?")
    user_hit = hits.filter(has_text="You ·")
    href = user_hit.get_attribute("href")
    assert href is not None and href.startswith(f"/chat/{wanted}#message-")
    user_hit.click()
    page.wait_for_url(f"**/chat/{wanted}#message-*")
    target = page.locator(f"[data-message-id='{href.split('#message-')[1]}']")
    expect(target).to_have_class(re.compile(r"\bmessage-target\b"))
    expect(target).to_be_in_viewport()

    # Markup in a message stays text in the results; nothing found says so.
    box.fill("teapots")
    expect(hits.first.locator("mark")).to_have_text("teapots")
    expect(page.locator(".search-results b")).to_have_count(0)
    box.fill("zeppelin")
    expect(page.get_by_text("No messages match “zeppelin”.")).to_be_visible()
    box.press("Escape")
    expect(page.get_by_role("list", name="Chats")).to_be_visible()
    assert console.page_errors == []


def test_a_chat_is_exported_as_markdown_and_as_json(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/search?q=x", "chat export")
    account = kibitz.register()
    agent = kibitz.create_echo_agent(account)
    chat_id = _chat_with(kibitz, account, agent["id"], "# Packing *list* for Zürich")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete")

    page.get_by_label("Export chat").click()
    with page.expect_download() as markdown_download:
        page.get_by_role("menuitem", name="Markdown (.md)").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename == "Packing list for Zürich.md"
    text = markdown.path().read_text()
    assert text.startswith("# Packing list for Zürich\n")
    assert "**You** ·" in text and "# Packing *list* for Zürich" in text

    page.get_by_label("Export chat").click()
    with page.expect_download() as json_download:
        page.get_by_role("menuitem", name="JSON (.json)").click()
    document = json.loads(json_download.value.path().read_text())
    assert document["chat"]["id"] == chat_id
    assert [m["sender"] for m in document["messages"]] == ["user", "agent"]
