"""Sign-in and sign-up errors show the server's problem detail."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.kibitz_app import PASSWORD, Kibitz

pytestmark = pytest.mark.browser


def test_a_wrong_password_shows_why_sign_in_failed(kibitz: Kibitz, page: Page) -> None:
    account = kibitz.register()
    page.goto("/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not sign you in")
    detail = kibitz.api(
        "POST", "/auth/login", json={"email": account.email, "password": "nope nope nope"}
    ).json()["detail"]
    expect(alert).to_contain_text(detail)
    assert page.url.endswith("/login")


def test_registering_a_taken_email_shows_the_conflict(kibitz: Kibitz, page: Page) -> None:
    account = kibitz.register()
    page.goto("/register")
    page.get_by_label("Work email").fill(account.email.upper())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("Could not create your account")
    assert page.url.endswith("/register")
