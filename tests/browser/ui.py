"""Steps a person takes in the web app, shared by the browser tests."""

from __future__ import annotations

from playwright.sync_api import Locator, Page

from tests.browser.kibitz_app import Account


def login(page: Page, account: Account) -> None:
    """Sign in through the login form and land on the dashboard."""
    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")


def navigate(page: Page, path: str) -> None:
    """Client-side navigation (like clicking a link): the in-memory session is kept."""
    page.evaluate(
        "path => { window.history.pushState({}, '', path);"
        " window.dispatchEvent(new PopStateEvent('popstate')); }",
        path,
    )
    page.wait_for_url(f"**{path}")


def send_message(page: Page, text: str) -> None:
    """Write in the composer and send."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    page.get_by_role("button", name="Send message").click()


def agent_messages(page: Page) -> Locator:
    """The agent's messages in the open chat."""
    return page.get_by_test_id("agent-message")


def words(count: int, prefix: str = "word") -> str:
    """A long, recognisable message: `word1 word2 …`."""
    return " ".join(f"{prefix}{index}" for index in range(1, count + 1))
