"""A plan limit is explained, with the plan that lifts it; a rate limit says when to retry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, run_kibitz
from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "src" / "kibitz" / "services" / "tenants" / "plans.json"
MESSAGES_PER_DAY = 2
READS_PER_MINUTE = 15


@pytest.fixture(scope="module")
def tight_kibitz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kibitz]:
    """A stack whose Basic plan allows two messages a day (the catalogue is data)."""
    kibitz_data = tmp_path_factory.mktemp("kibitz-tight")
    catalogue = json.loads(PLANS.read_text())
    for plan in catalogue["plans"]:
        if plan["id"] == "basic":
            plan["limits"]["messages_per_day"] = MESSAGES_PER_DAY
    plans_file = kibitz_data / "plans.json"
    plans_file.write_text(json.dumps(catalogue))
    with run_kibitz(kibitz_data, {"KIBITZ_TENANTS_PLANS_FILE": str(plans_file)}) as running:
        yield running


@pytest.fixture(scope="module")
def reads_kibitz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kibitz]:
    """A stack whose per-user read limit is tight enough to hit by browsing."""
    env = {"KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": str(READS_PER_MINUTE)}
    with run_kibitz(tmp_path_factory.mktemp("kibitz-reads"), env) as running:
        yield running


def test_a_rate_limited_chat_page_keeps_its_layout_and_says_when_to_retry(
    reads_kibitz: Kibitz, browser: Browser, artifacts: Path
) -> None:
    reads_kibitz.require("/chat/chats", "the chat service")
    account = reads_kibitz.register()
    agent = reads_kibitz.create_echo_agent(account, "Patient")
    sent = reads_kibitz.api(
        "POST", "/chat/send", account, json={"agent_id": agent["id"], "content": "hello"}
    )
    assert sent.status_code == 201, sent.text
    chat_id = sent.json()["chat_id"]
    context = browser.new_context(base_url=reads_kibitz.url, viewport=DESKTOP)
    page: Page = context.new_page()
    try:
        login(page, account)
        # The same person has used up this minute's reads elsewhere (another tab, a script).
        for _ in range(READS_PER_MINUTE):
            if reads_kibitz.api("GET", "/chat/chats", account).status_code == 429:
                break
        assert reads_kibitz.api("GET", "/chat/chats", account).status_code == 429
        navigate(page, f"/chat/{chat_id}")

        notice = page.locator("main").get_by_test_id("rate-limit-notice")
        expect(notice).to_be_visible()
        expect(notice).to_have_text(
            re.compile(r"^Too many requests in the last minute; try again in \d+ s\.$")
        )
        # The page around it is still there: navigation, the chat's header and the composer.
        expect(page.get_by_role("link", name="Dashboard").first).to_be_visible()
        expect(page.get_by_role("button", name="Delete chat")).to_be_visible()
        expect(page.get_by_role("textbox", name="Message")).to_be_visible()
        page.screenshot(path=str(artifacts / "desktop-light-rate-limited.png"))
    finally:
        context.close()


def test_creating_an_agent_beyond_the_plan_names_the_plan_that_allows_more(
    kibitz: Kibitz, page: Page
) -> None:
    kibitz.require("/agents/my", "the agents service")
    account = kibitz.register()
    plan = kibitz.api("GET", "/tenants/plan", account).json()
    for index in range(plan["limits"]["agents"]):
        kibitz.create_echo_agent(account, f"Agent {index + 1}")
    login(page, account)
    navigate(page, "/agents")
    page.get_by_role("button", name="New agent").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("One too many")
    dialog.get_by_role("button", name="Create agent").click()

    alert = dialog.get_by_role("status").filter(has_text="Not included in your plan")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("premium")
    expect(alert.get_by_role("link", name="See plans")).to_be_visible()


def test_the_daily_message_limit_names_the_plan_that_lifts_it(
    tight_kibitz: Kibitz, browser: Browser, artifacts: Path
) -> None:
    tight_kibitz.require("/chat/chats", "the chat service")
    account = tight_kibitz.register()
    tight_kibitz.create_echo_agent(account, "Counter")
    context = browser.new_context(base_url=tight_kibitz.url, viewport=DESKTOP)
    page: Page = context.new_page()
    try:
        login(page, account)
        navigate(page, "/chat")
        send_message(page, "first")
        page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
        # As long as the other browser tests give a reply (a busy CI worker can take over 5 s).
        expect(agent_messages(page).last).to_have_attribute(
            "data-status", "complete", timeout=15_000
        )
        send_message(page, "second")
        expect(agent_messages(page)).to_have_count(2)
        expect(agent_messages(page).last).to_have_attribute(
            "data-status", "complete", timeout=15_000
        )

        send_message(page, "third, over the limit")
        alert = page.get_by_role("status").filter(has_text="Limit reached")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text(re.compile("premium", re.IGNORECASE))
        expect(alert.get_by_role("link", name="See plans")).to_be_visible()
        # Nothing was stored, and what the person wrote is still in the box.
        expect(page.get_by_test_id("user-message")).to_have_count(2)
        expect(page.get_by_role("textbox", name="Message")).to_have_value("third, over the limit")
        page.screenshot(path=str(artifacts / "desktop-light-limit-reached.png"))
    finally:
        context.close()
