"""Several agents in one chat: the new-chat picker, the plan's word on it, @mentions, a panel
answering in order, and the participants edited from the chat header."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser


def _gold(kibitz: Kibitz) -> Account:
    """A tenant on the plan that has `multi_agent`."""
    account = kibitz.register()
    assert kibitz.api("POST", "/tenants/subscribe", account, json={"plan": "gold"}).is_success
    return account


def _agents(kibitz: Kibitz, account: Account, *names: str) -> list[dict[str, Any]]:
    return [kibitz.create_echo_agent(account, name) for name in names]


def _chat(kibitz: Kibitz, account: Account, agents: list[dict[str, Any]], mode: str) -> str:
    created = kibitz.api(
        "POST",
        "/chat/chats",
        account,
        json={"agent_ids": [agent["id"] for agent in agents], "mode": mode},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _chat_read(kibitz: Kibitz, account: Account, chat_id: str) -> dict[str, Any]:
    answer = kibitz.api("GET", f"/chat/chats/{chat_id}", account)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _participant_names(page: Page) -> list[str]:
    return [
        name.strip()
        for name in page.get_by_test_id("participant")
        .locator(".participants-picker__name")
        .all_inner_texts()
    ]


def test_a_plan_without_multi_agent_says_which_plan_has_it(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()  # Basic
    alice, _bob = _agents(kibitz, account, "Alice", "Bob")
    login(page, account)
    navigate(page, "/chat")
    page.get_by_role("radio", name=re.compile("Alice")).check()
    page.get_by_role("checkbox", name="Add Bob").check()
    send_message(page, "hello both")

    gate = page.get_by_test_id("plan-gate")
    expect(gate).to_contain_text("the Gold plan")
    expect(gate).to_contain_text("your Basic plan does not include them")
    # Nothing was stored: the words are kept and the page is still the new chat.
    expect(page.get_by_role("textbox", name="Message")).to_have_value("hello both")
    assert page.url.endswith("/chat")

    # The same sentence when adding an agent to an existing chat.
    chat_id = _chat(kibitz, account, [alice], "direct")
    navigate(page, f"/chat/{chat_id}")
    page.get_by_role("button", name="Edit participants").click()
    dialog = page.get_by_role("dialog", name="Participants")
    dialog.get_by_role("checkbox", name="Add Bob").check()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog.get_by_test_id("plan-gate")).to_contain_text("the Gold plan")
    assert _chat_read(kibitz, account, chat_id)["agent_ids"] == [alice["id"]]
    assert console.page_errors == []


def test_participants_are_edited_from_the_chat_header(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    alice, bob, carol = _agents(kibitz, account, "Alice", "Bob", "Carol")
    chat_id = _chat(kibitz, account, [alice], "direct")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    summary = page.get_by_test_id("participants-summary")
    expect(summary).to_contain_text("Alice · echo")

    summary.click()
    dialog = page.get_by_role("dialog", name="Participants")
    dialog.get_by_role("checkbox", name="Add Bob").check()
    dialog.get_by_role("checkbox", name="Add Carol").check()
    dialog.get_by_role("button", name="Make Carol the default").click()
    assert _participant_names(page) == ["Carol", "Alice", "Bob"]
    dialog.get_by_role("button", name="Move Bob up").click()
    assert _participant_names(page) == ["Carol", "Bob", "Alice"]
    dialog.get_by_role("radio", name=re.compile("^Panel")).check()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog).to_be_hidden()
    expect(summary).to_contain_text("Carol, Bob, Alice")
    expect(summary).to_contain_text("Panel")
    chat = _chat_read(kibitz, account, chat_id)
    assert chat["agent_ids"] == [carol["id"], bob["id"], alice["id"]]
    assert chat["mode"] == "panel"

    # Back to one agent: the mode goes back to direct with it.
    summary.click()
    dialog.get_by_role("button", name="Remove Bob").click()
    dialog.get_by_role("button", name="Remove Alice").click()
    dialog.get_by_role("button", name="Save participants").click()
    expect(dialog).to_be_hidden()
    expect(summary).to_contain_text("Carol · echo")
    chat = _chat_read(kibitz, account, chat_id)
    assert (chat["agent_ids"], chat["mode"]) == ([carol["id"]], "direct")
    assert console.page_errors == []


def test_a_panel_picked_for_a_new_chat_answers_in_order_each_reply_labelled(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    ada, grace, linus = _agents(kibitz, account, "Ada", "Grace", "Linus")
    login(page, account)
    navigate(page, "/chat")
    page.get_by_role("radio", name=re.compile("Grace")).check()
    page.get_by_role("checkbox", name="Add Linus").check()
    page.get_by_role("checkbox", name="Add Ada").check()
    page.get_by_role("button", name="Move Ada up").click()
    assert _participant_names(page) == ["Grace", "Ada", "Linus"]
    page.get_by_role("radio", name=re.compile("^Panel")).check()
    expect(page.get_by_role("radio", name=re.compile("^Panel"))).to_be_checked()
    send_message(page, "what do you all think")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    chat_id = page.url.rsplit("/", 1)[-1]
    chat = _chat_read(kibitz, account, chat_id)
    assert chat["agent_ids"] == [grace["id"], ada["id"], linus["id"]]
    assert chat["mode"] == "panel"

    replies = agent_messages(page)
    expect(replies).to_have_count(3, timeout=30_000)
    for index in range(3):
        expect(replies.nth(index)).to_have_attribute("data-status", "complete", timeout=30_000)
    authors = replies.get_by_test_id("message-author").all_inner_texts()
    assert [author.strip() for author in authors] == ["Grace", "Ada", "Linus"]
    # Each agent has its own colour, the same on every reply and in the header.
    colours = [
        replies.nth(index).locator(".agent-avatar").evaluate("e => getComputedStyle(e).background")
        for index in range(3)
    ]
    assert len(set(colours)) == 3
    expect(replies.first).to_contain_text("what do you all think")

    # After a reload, the stored replies keep their labels.
    page.reload()
    authors = agent_messages(page).get_by_test_id("message-author")
    expect(authors).to_have_text(["Grace", "Ada", "Linus"])
    assert console.page_errors == []


def test_a_direct_chat_completes_mentions_and_the_named_agent_answers(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = _gold(kibitz)
    agents = _agents(kibitz, account, "Alice", "Bob Smith", "Bobby")
    chat_id = _chat(kibitz, account, agents, "direct")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    box = page.get_by_role("textbox", name="Message")
    menu = page.get_by_role("listbox", name="Mention an agent")

    box.press_sequentially("@bo")
    expect(menu.get_by_role("option")).to_have_text(
        [re.compile("@BobSmith"), re.compile("@Bobby$")]
    )
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@BobSmith"))
    box.press("ArrowDown")
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@Bobby$"))
    box.press("ArrowDown")  # wraps round
    expect(menu.get_by_role("option", selected=True)).to_have_text(re.compile("@BobSmith"))
    box.press("Enter")
    expect(menu).to_be_hidden()
    expect(box).to_have_value("@BobSmith ")
    # Escape closes the menu and keeps the words; Enter then sends.
    box.press_sequentially("and @al")
    expect(menu.get_by_role("option")).to_have_text([re.compile("@Alice$")])
    box.press("Escape")
    expect(menu).to_be_hidden()
    expect(box).to_have_value("@BobSmith and @al")
    box.press_sequentially("ice, hello")
    box.press("Enter")

    replies = agent_messages(page)
    expect(replies).to_have_count(2, timeout=30_000)
    for index in range(2):
        expect(replies.nth(index)).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(replies.get_by_test_id("message-author")).to_have_text(["Bob Smith", "Alice"])

    # An @name nobody in the chat has: said under the composer, with the names to use.
    send_message(page, "@carol are you there?")
    error = page.get_by_test_id("mention-error")
    expect(error).to_contain_text("@carol is not an agent in this chat")
    expect(error).to_contain_text("@Alice, @BobSmith, @Bobby")
    expect(box).to_have_value("@carol are you there?")
    expect(replies).to_have_count(2)
    assert console.page_errors == []
