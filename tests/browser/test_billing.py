"""Billing in /settings with billing on: upgrade goes to Stripe Checkout, the plan and invoices
follow the webhooks, Manage billing opens the portal, an overdue payment shows a banner."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, run_kibitz
from tests.browser.kibitz_app import Kibitz
from tests.browser.ui import login, navigate
from tests.fixtures.stripe_server import FakeStripe, signed_webhook, stripe_in_thread

pytestmark = pytest.mark.browser

WEBHOOK_SECRET = "whsec_browser_tests"


@pytest.fixture(scope="module")
def stripe() -> Iterator[FakeStripe]:
    with stripe_in_thread() as fake:
        yield fake


@pytest.fixture(scope="module")
def billing_kibitz(
    stripe: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kibitz]:
    """A stack with billing on, against the local Stripe."""
    env = {
        "KIBITZ_BILLING_STRIPE_SECRET_KEY": stripe.api_key,
        "KIBITZ_BILLING_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "KIBITZ_BILLING_PRICES": json.dumps({"premium": "price_premium", "gold": "price_gold"}),
        "KIBITZ_BILLING_STRIPE_API_BASE": stripe.base_url,
    }
    with run_kibitz(tmp_path_factory.mktemp("kibitz-billing"), env) as running:
        yield running


@pytest.fixture
def page(browser: Browser, billing_kibitz: Kibitz) -> Iterator[Page]:
    """A page of the billing stack (not the package's shared one)."""
    context = browser.new_context(base_url=billing_kibitz.url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def deliver(kibitz: Kibitz, events: list[dict[str, Any]]) -> None:
    for event in events:
        payload = json.dumps(event).encode()
        answer = httpx.post(
            f"{kibitz.url}/billing/webhook",
            content=payload,
            headers=signed_webhook(payload, WEBHOOK_SECRET),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text


def test_upgrading_goes_to_checkout_and_the_settings_follow_the_subscription(
    billing_kibitz: Kibitz, stripe: FakeStripe, page: Page, artifacts: Path
) -> None:
    kibitz = billing_kibitz
    account = kibitz.register()
    login(page, account)
    navigate(page, "/settings")
    panel = page.get_by_test_id("billing-panel")
    expect(panel.get_by_test_id("billing-summary")).to_contain_text("No subscription")
    expect(panel.get_by_text("No invoices yet")).to_be_visible()
    # With billing on, the plan cards do not switch plans themselves.
    expect(page.get_by_role("button", name="Switch to Gold")).to_have_count(0)

    panel.get_by_role("button", name="Upgrade to Gold").click()
    page.wait_for_url(re.compile(r"/c/pay/cs_test_"))
    expect(page.get_by_role("heading", name="Stripe Checkout (test)")).to_be_visible()
    session_id = page.url.rsplit("/", 1)[1]
    assert stripe.checkout_sessions[session_id]["metadata"]["tenant_id"] == account.tenant_id

    # The customer pays on Stripe's page; Stripe tells kibitz.
    events = stripe.complete_checkout(session_id)
    deliver(kibitz, events)
    # Stripe sends the browser back to the success URL: a fresh load of the app.
    page.goto("/settings?billing=success")
    panel = page.get_by_test_id("billing-panel")
    expect(panel.get_by_text("The new plan applies as soon as Stripe confirms")).to_be_visible()
    summary = panel.get_by_test_id("billing-summary")
    expect(summary).to_contain_text("Gold")
    expect(summary).to_contain_text("Active")
    expect(summary).to_contain_text("Renews on")
    invoices = panel.get_by_test_id("billing-invoices")
    expect(invoices.get_by_role("row")).to_have_count(2)  # the header and one invoice
    expect(invoices).to_contain_text("paid")
    expect(page.get_by_test_id("plan-gold")).to_contain_text("Current")

    # A renewal fails: a banner says so, with the way to fix it.
    deliver(kibitz, stripe.fail_renewal(events[0]["data"]["object"]["id"]))
    page.reload()
    banner = page.get_by_test_id("billing-past-due")
    expect(banner).to_contain_text("Payment overdue")
    expect(banner).to_contain_text("returns to the free plan")
    page.get_by_test_id("billing-panel").screenshot(
        path=str(artifacts / "desktop-light-billing.png")
    )

    page.get_by_test_id("billing-panel").get_by_role("button", name="Manage billing").first.click()
    page.wait_for_url(re.compile(r"/p/session/bps_"))
    expect(page.get_by_role("heading", name="Stripe customer portal (test)")).to_be_visible()


def test_a_member_sees_the_plan_but_no_billing_controls(billing_kibitz: Kibitz, page: Page) -> None:
    kibitz = billing_kibitz
    owner = kibitz.register()
    invite = kibitz.api("POST", "/tenants/invites", owner, json={"role": "member"})
    member = kibitz.register(invite_code=invite.json()["code"])
    login(page, member)
    navigate(page, "/settings")
    panel = page.get_by_test_id("billing-panel")
    expect(panel.get_by_text("Only owners and admins manage billing.")).to_be_visible()
    expect(panel.get_by_role("button", name=re.compile("Upgrade"))).to_have_count(0)
    expect(panel.get_by_test_id("billing-invoices")).to_have_count(0)
