"""Branches in the browser: regenerate a reply, edit a message, switch between the versions with
the 2/3 arrows, and go on writing in the branch on screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser


def _user_messages(page: Page) -> Locator:
    return page.get_by_test_id("user-message")


def test_regenerate_edit_and_switch_branches(kibitz: Kibitz, page: Page, console: Console) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    agent = kibitz.create_echo_agent(account, "Echo")
    sent = kibitz.api(
        "POST", "/chat/send", account, json={"agent_id": agent["id"], "content": "first wording"}
    )
    assert sent.status_code == 201, sent.text
    chat_id, first_reply = sent.json()["chat_id"], sent.json()["agent_message"]["id"]
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    reply = agent_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(reply.get_by_test_id("branch-position")).to_have_count(0)

    # Regenerate: a second reply beside the first, shown as version 2 of 2.
    reply.get_by_role("button", name="Regenerate reply").click()
    regenerated = agent_messages(page).last
    expect(regenerated.get_by_test_id("branch-position")).to_have_text("2/2", timeout=30_000)
    expect(regenerated).to_have_attribute("data-status", "complete", timeout=30_000)
    assert regenerated.get_attribute("data-message-id") != first_reply
    expect(agent_messages(page)).to_have_count(1)

    # "Previous version" goes back to the first reply.
    regenerated.get_by_role("button", name="Previous version").click()
    expect(agent_messages(page).last).to_have_attribute("data-message-id", first_reply)
    expect(agent_messages(page).last.get_by_test_id("branch-position")).to_have_text("1/2")

    # Edit the question: a new version of it, answered anew.
    question = _user_messages(page).last
    question.get_by_role("button", name="Edit message").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("second wording")
    page.get_by_role("button", name="Save and send").click()
    expect(_user_messages(page).last).to_contain_text("second wording", timeout=30_000)
    expect(_user_messages(page).last.get_by_test_id("branch-position")).to_have_text("2/2")
    expect(agent_messages(page).last).to_contain_text("second wording", timeout=30_000)
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete", timeout=30_000)

    # Back to the first wording: its conversation (with its two replies) is still there.
    _user_messages(page).last.get_by_role("button", name="Previous version").click()
    expect(_user_messages(page).last).to_contain_text("first wording")
    expect(_user_messages(page).last.get_by_test_id("branch-position")).to_have_text("1/2")
    expect(agent_messages(page).last.get_by_test_id("branch-position")).to_be_visible()

    # Writing on goes on in the branch on screen, and survives a reload.
    send_message(page, "and then")
    expect(agent_messages(page).last).to_contain_text("and then", timeout=30_000)
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete", timeout=30_000)
    page.reload()
    expect(_user_messages(page)).to_have_count(2, timeout=30_000)
    expect(_user_messages(page).first).to_contain_text("first wording")
    expect(_user_messages(page).last).to_contain_text("and then")
    assert console.page_errors == []
