"""Knowledge in the browser: create a collection, drop a document, watch it get indexed, try a
search, give an agent the collection, and read the cited source under its reply."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser

HANDBOOK = (
    b"# Refunds\n\nCustomers on an annual plan may ask for their money back within thirty days "
    b"of purchase. After that, unused months are credited to the account.\n"
)


def test_a_dropped_document_is_indexed_searched_and_cited_under_a_reply(
    kibitz: Kibitz, page: Page
) -> None:
    kibitz.require("/knowledge/collections", "the knowledge service")
    account = kibitz.register()
    upgraded = kibitz.api("POST", "/tenants/subscribe", account, json={"plan": "premium"})
    assert upgraded.status_code == 200, upgraded.text
    kibitz.create_echo_agent(account, "Librarian")
    login(page, account)
    navigate(page, "/knowledge")

    page.get_by_label("New collection").fill("Handbook")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_role("list", name="Collections")).to_contain_text("Handbook")

    # Drop a file on the drop zone, as a person dragging it from their desktop would.
    page.get_by_test_id("dropzone").dispatch_event(
        "drop",
        {
            "dataTransfer": page.evaluate_handle(
                """(text) => {
                    const transfer = new DataTransfer();
                    transfer.items.add(new File([text], "refunds.md", { type: "text/markdown" }));
                    return transfer;
                }""",
                HANDBOOK.decode(),
            )
        },
    )
    document = page.get_by_test_id("document").filter(has_text="refunds.md")
    expect(document).to_have_attribute("data-status", "indexed", timeout=30_000)
    expect(document).to_contain_text("1 chunk")

    page.get_by_label("Question").fill("can I get reimbursed for a yearly subscription?")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("search-hit").first).to_contain_text("thirty days")

    navigate(page, "/agents")
    card = page.get_by_test_id("agent-card").filter(has_text="Librarian")
    card.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("checkbox", name="Handbook").check()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_be_hidden()
    agents = kibitz.api("GET", "/agents/my", account).json()["items"]
    assert len(agents[0]["knowledge_collection_ids"]) == 1

    page.get_by_role("link", name="New chat").first.click()
    page.wait_for_url("**/chat")
    page.get_by_role("radio", name=re.compile("Librarian")).check()
    send_message(page, "refund for an annual plan?")
    reply = agent_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    citation = reply.get_by_test_id("citation").first
    expect(citation).to_contain_text("[1] refunds.md")
    expect(citation.get_by_text("thirty days")).to_be_hidden()
    citation.get_by_text("refunds.md").click()
    expect(citation.get_by_text("thirty days", exact=False)).to_be_visible()
