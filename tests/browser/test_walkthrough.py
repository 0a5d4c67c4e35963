"""What a new user met on a first walk through the app, each fixed and kept fixed."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP
from tests.browser.kibitz_app import Account, Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def _open_new_agent_dialog(page: Page) -> None:
    navigate(page, "/agents")
    page.get_by_role("button", name="New agent").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()


def _start_chat(kibitz: Kibitz, account: Account, agent_name: str) -> str:
    agent = kibitz.create_echo_agent(account, agent_name)
    sent = kibitz.api(
        "POST", "/chat/send", account, json={"agent_id": agent["id"], "content": "hi"}
    )
    assert sent.status_code == 201, sent.text
    return str(sent.json()["chat_id"])


def test_the_composer_names_the_agent_after_the_first_message(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/chat/chats", "the chat service")
    account = kibitz.register()
    chat_id = _start_chat(kibitz, account, "Marvin")
    login(page, account)
    navigate(page, f"/chat/{chat_id}")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_have_attribute("placeholder", "Message Marvin…")


def test_no_provider_option_is_cut_off_in_the_agent_dialog(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/agents/providers", "the agents service")
    login(page, kibitz.register())
    _open_new_agent_dialog(page)
    select = page.get_by_role("dialog").get_by_label("Provider")
    # Every option's text, in the select's own font, fits inside the closed select's text box.
    overflowing = select.evaluate(
        """select => {
            const style = getComputedStyle(select);
            const context = document.createElement("canvas").getContext("2d");
            context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const room = select.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return [...select.options]
                .filter(option => context.measureText(option.text).width > room)
                .map(option => option.text);
        }"""
    )
    assert overflowing == []


def test_a_refused_base_url_is_shown_once_next_to_its_field(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/agents/providers", "the agents service")
    account = kibitz.register()
    # Custom endpoints are not on Basic everywhere: take the plan that includes them.
    assert kibitz.api("POST", "/tenants/subscribe", account, json={"plan": "gold"}).is_success
    login(page, account)
    _open_new_agent_dialog(page)
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Local model")
    dialog.get_by_label("Provider").select_option("custom")
    dialog.get_by_label("Model").fill("llama3.1")
    # Loopback: the service refuses it (SSRF guard); only the server can tell.
    dialog.get_by_label("Base URL").fill("http://127.0.0.1:11434/v1")
    dialog.get_by_role("button", name="Create agent").click()

    field = dialog.locator(".field").filter(has=page.get_by_label("Base URL"))
    error = field.locator(".field__error")
    expect(error).to_be_visible()
    message = error.inner_text()
    assert message
    # Once, and only there: no copy in an alert at the top of the form.
    expect(dialog.get_by_text(message, exact=False)).to_have_count(1)
    expect(dialog.get_by_role("alert")).to_have_count(0)
    expect(dialog.get_by_label("Base URL")).to_have_attribute("aria-invalid", "true")


def test_a_disabled_create_button_says_why(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/agents/providers", "the agents service")
    login(page, kibitz.register())
    _open_new_agent_dialog(page)
    dialog = page.get_by_role("dialog")
    create = dialog.get_by_role("button", name="Create agent")
    expect(create).to_be_disabled()
    expect(create).to_have_accessible_description("Give the agent a name first.")
    expect(dialog.get_by_text("Give the agent a name first.")).to_be_visible()
    dialog.get_by_label("Name").fill("Named")
    expect(create).to_be_enabled()
    expect(dialog.get_by_text("Give the agent a name first.")).to_have_count(0)


def test_plan_cards_list_the_models_each_size_means(kibitz: Kibitz, page: Page) -> None:
    kibitz.require("/tenants/plans", "the tenants service")
    kibitz.require("/agents/providers", "the agents service")
    account = kibitz.register()
    plans = kibitz.api("GET", "/tenants/plans", account).json()["items"]
    providers = kibitz.api("GET", "/agents/providers", account).json()["items"]
    login(page, account)
    navigate(page, "/settings")
    basic = next(plan for plan in plans if plan["id"] == "basic")
    card = page.get_by_test_id("plan-basic")
    for size in basic["limits"]["models"]:
        line = card.get_by_test_id(f"plan-size-{size}")
        expect(line).to_contain_text(size)
        for model in (m for p in providers for m in p["models"] if m["size"] == size):
            expect(line).to_contain_text(model["id"])


def test_a_revoked_session_sends_the_user_to_login_saying_it_ended(
    kibitz: Kibitz, context: BrowserContext, page: Page
) -> None:
    account = kibitz.register()
    login(page, account)
    # Someone else spends the browser's refresh token: the server revokes the whole family.
    cookie = next(c for c in context.cookies() if c["name"] == "kibitz_refresh")
    stolen = httpx.post(
        f"{kibitz.url}/auth/refresh",
        json={},
        headers={"X-Kibitz-Client": "web"},
        cookies={"kibitz_refresh": cookie["value"]},
    )
    assert stolen.status_code == 200
    page.reload()
    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.get_by_text("Your session ended; sign in again to continue.")).to_be_visible()


def test_anonymous_page_loads_make_no_refresh_call(kibitz: Kibitz, browser: Browser) -> None:
    context = browser.new_context(base_url=kibitz.url, viewport=DESKTOP)
    page = context.new_page()
    refreshes: list[str] = []
    page.on(
        "request", lambda request: "/auth/refresh" in request.url and refreshes.append(request.url)
    )
    try:
        for path in ("/login", "/register", "/dashboard", "/chat"):
            page.goto(path)
            expect(
                page.get_by_role("heading", name=re.compile("Welcome back|Create"))
            ).to_be_visible()
        assert refreshes == []
        # A plain visit to the login page says nothing about an ended session.
        expect(page.get_by_text("Your session ended")).to_have_count(0)
    finally:
        context.close()
