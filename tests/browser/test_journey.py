"""The issue's journey: register, agent, streamed chat, reload, stop, upgrade, logout."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Console
from tests.browser.kibitz_app import PASSWORD, Kibitz
from tests.browser.ui import agent_messages, login, navigate, send_message, words

pytestmark = pytest.mark.browser


def _register_through_the_form(page: Page, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Full name").fill("Grace Hopper")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organisation name").fill("Hopper Labs")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/dashboard")


def _create_echo_agent_through_the_form(page: Page, name: str) -> None:
    page.get_by_role("link", name="Agents").first.click()
    page.wait_for_url("**/agents")
    page.get_by_role("button", name="New agent").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Provider").select_option("echo")
    dialog.get_by_label("Model").select_option("echo")
    dialog.get_by_role("button", name="Create agent").click()
    expect(page.get_by_test_id("agent-card").filter(has_text=name)).to_be_visible()


def test_register_create_an_agent_and_see_a_reply_stream_in(
    kibitz: Kibitz, page: Page, console: Console
) -> None:
    kibitz.require("/agents/my", "the agents service")
    kibitz.require("/chat/chats", "the chat service")
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    _register_through_the_form(page, "grace@example.com")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("usage-meters")).to_be_visible()

    _create_echo_agent_through_the_form(page, "Parrot")

    page.get_by_role("link", name="New chat").first.click()
    page.wait_for_url("**/chat")
    page.get_by_role("radio", name=re.compile("Parrot")).check()
    text = words(60, "tok")
    send_message(page, text)

    # The chat gets its own URL as soon as it exists, while the reply is still streaming.
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    reply = agent_messages(page).last
    # Partial text is visible before the reply completes.
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply).to_contain_text("tok1")
    partial = reply.inner_text()
    assert "tok60" not in partial
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(reply).to_contain_text("tok60")
    # The new chat is listed in the sidebar.
    expect(page.get_by_role("list", name="Chats").get_by_role("link")).to_have_count(1)
    assert console.page_errors == []
    # No token ever travels in a URL (JWTs start with "eyJ").
    assert not [url for url in urls if "eyJ" in url or "token" in url.lower()]


def test_signing_in_sets_an_http_only_refresh_cookie(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    login(page, kibitz.register())
    cookies = [c for c in context.cookies() if c["name"] == "kibitz_refresh"]
    assert len(cookies) == 1
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert cookies[0]["path"] == "/auth"
    # Script cannot read it.
    assert "kibitz_refresh" not in page.evaluate("document.cookie")


def test_reloading_a_chat_restores_the_session_from_the_refresh_cookie(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Historian")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, "remember this sentence please")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    expect(agent_messages(page).last).to_have_attribute("data-status", "complete", timeout=30_000)
    chat_url = page.url
    before = next(c["value"] for c in context.cookies() if c["name"] == "kibitz_refresh")

    page.reload()
    # The refresh cookie restores the session: no trip to the login page.
    expect(page.get_by_test_id("user-message")).to_contain_text("remember this sentence please")
    expect(agent_messages(page).last).to_contain_text("remember this sentence please")
    assert page.url == chat_url
    # The refresh token rotated: the browser now holds a new one.
    after = next(c["value"] for c in context.cookies() if c["name"] == "kibitz_refresh")
    assert after != before


def test_stopping_a_long_reply_keeps_what_streamed(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    kibitz.create_echo_agent(account, "Chatterbox")
    login(page, account)
    navigate(page, "/chat")
    send_message(page, words(400, "w"))
    reply = agent_messages(page).last
    expect(reply).to_contain_text("w3")
    page.get_by_role("button", name="Stop generating").click()

    expect(reply).to_have_attribute("data-status", "stopped", timeout=15_000)
    expect(reply).to_contain_text("Stopped")
    assert "w400" not in reply.inner_text()
    # The composer is usable again.
    expect(page.get_by_role("button", name="Send message")).to_be_visible()


def test_upgrading_the_plan_shows_the_new_limits(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/tenants/plans", "the tenants service")
    account = kibitz.register()
    login(page, account)
    meters = page.get_by_test_id("usage-meters")
    expect(meters.get_by_role("meter", name="Messages today")).to_have_attribute(
        "aria-valuemax", "100"
    )

    page.get_by_role("link", name="Settings").first.click()
    premium = page.get_by_test_id("plan-premium")
    premium.get_by_role("button", name=re.compile("Switch to")).click()
    expect(page.get_by_text("Plan updated")).to_be_visible()
    expect(premium.get_by_text("Current")).to_be_visible()

    page.get_by_role("link", name="Dashboard").first.click()
    expect(meters.get_by_role("meter", name="Messages today")).to_have_attribute(
        "aria-valuemax", "2000"
    )
    expect(page.get_by_text("Premium plan")).to_be_visible()


def test_logging_out_sends_protected_pages_to_the_login_page(kibitz: Kibitz, page: Page) -> None:
    account = kibitz.register()
    login(page, account)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login$"))
    # The session cannot be renewed any more: logout revoked it.
    renewed = page.evaluate(
        """() => fetch("/auth/refresh", {method: "POST", body: "{}",
            headers: {"Content-Type": "application/json", "X-Kibitz-Client": "web"}})
            .then(answer => answer.status)"""
    )
    assert renewed != 200

    for path in ("/dashboard", "/agents", "/settings", "/chat"):
        page.goto(path)
        page.wait_for_url(re.compile(r"/login\?next="))
        expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
