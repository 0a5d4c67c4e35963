"""Owners invite teammates with a single-use code; the invitee joins as a member."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.kibitz_app import PASSWORD, Kibitz
from tests.browser.ui import login, navigate

pytestmark = pytest.mark.browser


def test_an_owner_invites_a_teammate_who_joins_as_a_member(
    kibitz: Kibitz, browser: Browser, page: Page
) -> None:
    kibitz.require("/tenants/members", "the tenants service")
    owner = kibitz.register(tenant_name="Team Rocket")
    login(page, owner)
    navigate(page, "/settings")
    members = page.locator("#members")
    expect(members.get_by_role("cell", name=owner.email, exact=True)).to_be_visible()
    members.get_by_role("button", name="Create invite code").click()
    code = members.get_by_test_id("invite-code").locator("code").inner_text()
    assert code

    invitee = browser.new_context(base_url=kibitz.url)
    joiner = invitee.new_page()
    try:
        joiner.goto("/register")
        joiner.get_by_role("button", name="I have an invite code").click()
        joiner.get_by_label("Full name").fill("Jessie")
        joiner.get_by_label("Work email").fill("jessie@example.com")
        joiner.get_by_label("Password").fill(PASSWORD)
        joiner.get_by_label("Invite code").fill(code)
        joiner.get_by_role("button", name="Create account").click()
        joiner.wait_for_url("**/dashboard")
        expect(joiner.get_by_text("Team Rocket")).to_be_visible()
        navigate(joiner, "/settings")
        expect(joiner.get_by_text("Only owners and admins can change the plan.")).to_be_visible()
        expect(joiner.locator("#members")).to_have_count(0)
    finally:
        invitee.close()

    navigate(page, "/dashboard")
    navigate(page, "/settings")
    expect(members.get_by_role("cell", name="jessie@example.com", exact=True)).to_be_visible()


def test_an_owner_removes_a_member_who_can_no_longer_sign_in(kibitz: Kibitz, page: Page) -> None:
    owner = kibitz.register(tenant_name="Team Magma")
    code = kibitz.api("POST", "/tenants/invites", owner, json={"role": "member"}).json()["code"]
    member = kibitz.register(invite_code=code)
    login(page, owner)
    navigate(page, "/settings")
    members = page.locator("#members")
    expect(members.get_by_role("cell", name=member.email, exact=True)).to_be_visible()
    # Nobody removes themselves here.
    expect(members.get_by_role("button", name=f"Remove {owner.email}")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    members.get_by_role("button", name=f"Remove {member.email}").click()
    expect(members.get_by_role("cell", name=member.email, exact=True)).to_have_count(0)
    # Auth hears of the removal on the bus: a moment later on a busy machine.
    for _ in range(100):
        refused = kibitz.api(
            "POST", "/auth/login", json={"email": member.email, "password": PASSWORD}
        )
        if refused.status_code != 200:
            break
        time.sleep(0.1)
    assert refused.status_code == 401


def test_a_person_deletes_their_account_after_re_entering_the_password(
    kibitz: Kibitz, page: Page
) -> None:
    person = kibitz.register()
    login(page, person)
    navigate(page, "/settings")
    page.get_by_role("button", name="Delete account").click()
    dialog = page.get_by_role("dialog", name="Delete your account")
    dialog.get_by_label("Your password").fill("not my password")
    dialog.get_by_role("button", name="Delete my account").click()
    expect(dialog.get_by_role("alert")).to_contain_text("password is not correct")
    dialog.get_by_label("Your password").fill(PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    page.wait_for_url("**/login")
    refused = kibitz.api("POST", "/auth/login", json={"email": person.email, "password": PASSWORD})
    assert refused.status_code == 401
