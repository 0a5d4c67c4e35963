"""Billing's HTTP contract against the local Stripe: config, checkout, portal, reads, isolation."""

from __future__ import annotations

import pytest

from kibitz.kit.http import INTERNAL_TOKEN_HEADER
from tests.fixtures.stack import Stack
from tests.fixtures.stripe_server import FakeStripe
from tests.services.billing.conftest import Billing, team

PUBLIC_ROUTES = [
    ("GET", "/billing/config"),
    ("POST", "/billing/checkout"),
    ("POST", "/billing/portal"),
    ("GET", "/billing/subscription"),
    ("GET", "/billing/invoices"),
]


@pytest.mark.parametrize(("method", "path"), PUBLIC_ROUTES)
async def test_every_route_but_the_webhook_needs_a_bearer_token(
    billing: Billing, method: str, path: str
) -> None:
    response = await billing.http.request(method, f"{billing.base}{path}")
    assert response.status_code == 401


async def test_billings_outbox_backlog_is_a_gauge_on_its_metrics(stack: Stack) -> None:
    scraped = (await stack.http.get(f"{stack.url('billing')}/metrics")).text
    assert 'kibitz_outbox_backlog{service="billing"}' in scraped


async def test_config_says_billing_is_on_and_names_each_plans_price(
    stack: Stack, billing: Billing
) -> None:
    owner = await stack.register()
    config = await billing.get("/billing/config", owner)
    assert config.json() == {
        "enabled": True,
        "plans": [
            {"id": "premium", "price": "price_premium"},
            {"id": "gold", "price": "price_gold"},
        ],
    }


async def test_an_owners_checkout_makes_one_customer_and_a_subscription_session(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    first = await billing.checkout(owner, "gold")
    assert first.status_code == 200, first.text
    session_id = first.json()["url"].rsplit("/", 1)[1]
    session = stripe.checkout_sessions[session_id]
    assert session["mode"] == "subscription"
    assert session["_price"] == "price_gold"
    assert session["metadata"] == {"tenant_id": owner.tenant_id, "plan": "gold"}
    assert session["_subscription_metadata"]["tenant_id"] == owner.tenant_id
    assert session["client_reference_id"] == owner.tenant_id
    assert session["success_url"].startswith("http://kibitz.test/settings")
    customer = stripe.customers[session["customer"]]
    assert customer["metadata"] == {"tenant_id": owner.tenant_id}

    # A second checkout reuses the customer, and (same plan, minutes later) the same session.
    again = await billing.checkout(owner, "gold")
    assert again.json()["url"] == first.json()["url"]
    premium = await billing.checkout(owner, "premium")
    assert (
        stripe.checkout_sessions[premium.json()["url"].rsplit("/", 1)[1]]["customer"]
        == (session["customer"])
    )
    tenant_customers = [
        c for c in stripe.customers.values() if c["metadata"] == {"tenant_id": owner.tenant_id}
    ]
    assert len(tenant_customers) == 1
    # Every call that creates something in Stripe carried an idempotency key of ours.
    creating = [
        r
        for r in stripe.requests
        if r[0] == "POST" and r[2].get("metadata", {}).get("tenant_id") == owner.tenant_id
    ]
    assert creating and all(key and key.startswith("kibitz-") for *_, key in creating)


async def test_a_member_may_not_start_a_checkout_or_open_the_portal(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    _owner, member = await team(stack)
    sessions_before = len(stripe.checkout_sessions)
    refused = await billing.checkout(member, "gold")
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/role-required")
    assert len(stripe.checkout_sessions) == sessions_before
    assert (await billing.post("/billing/portal", member)).status_code == 403
    assert (await billing.get("/billing/invoices", member)).status_code == 403
    # Members still see the plan their tenant pays for.
    assert (await billing.get("/billing/subscription", member)).status_code == 200


async def test_checkout_of_an_unknown_or_free_plan_is_a_422(stack: Stack, billing: Billing) -> None:
    owner = await stack.register()
    for plan in ("basic", "platinum"):
        refused = await billing.checkout(owner, plan)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "plan"


async def test_a_tenant_already_paying_is_sent_to_the_portal_instead_of_a_second_checkout(
    stack: Stack, billing: Billing
) -> None:
    owner = await stack.register()
    await billing.subscribe(owner, "premium")
    refused = await billing.checkout(owner, "gold")
    assert refused.status_code == 409
    assert refused.json()["portal"] == "/billing/portal"


async def test_the_portal_needs_a_customer_then_answers_stripes_url(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    before = await billing.post("/billing/portal", owner)
    assert before.status_code == 409
    assert before.json()["type"].endswith("/no-billing-account")
    await billing.subscribe(owner, "gold")
    portal = await billing.post("/billing/portal", owner)
    assert portal.status_code == 200, portal.text
    session = stripe.portal_sessions[portal.json()["url"].rsplit("/", 1)[1]]
    assert session["return_url"] == "http://kibitz.test/settings"


async def test_subscription_and_invoices_follow_a_paid_checkout(
    stack: Stack, billing: Billing
) -> None:
    owner = await stack.register()
    assert (await billing.get("/billing/subscription", owner)).json() == {
        "plan": "basic",
        "status": "none",
        "current_period_end": None,
        "cancel_at_period_end": False,
        "grace_ends_at": None,
    }
    await billing.subscribe(owner, "gold")
    subscription = (await billing.get("/billing/subscription", owner)).json()
    assert subscription["plan"] == "gold"
    assert subscription["status"] == "active"
    assert subscription["current_period_end"] is not None
    assert subscription["cancel_at_period_end"] is False
    invoices = (await billing.get("/billing/invoices", owner)).json()
    assert invoices["next_cursor"] is None
    [invoice] = invoices["items"]
    assert invoice["status"] == "paid"
    assert invoice["amount_paid"] == 9000
    assert invoice["currency"] == "eur"
    await billing.wait_for_plan(owner, "gold")


async def test_invoices_page_newest_first(stack: Stack, billing: Billing) -> None:
    owner = await stack.register()
    subscription_id = await billing.subscribe(owner, "premium")
    await billing.deliver_all(billing.stripe.fail_renewal(subscription_id))
    await billing.deliver_all(billing.stripe.pay_open_invoice(subscription_id))
    first = (await billing.get("/billing/invoices", owner, params={"limit": 1})).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = (
        await billing.get(
            "/billing/invoices", owner, params={"limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert rest["next_cursor"] is None
    newest, oldest = first["items"][0], rest["items"][0]
    assert newest["created_at"] > oldest["created_at"]
    assert {newest["status"], oldest["status"]} == {"paid"}


async def test_another_tenants_subscription_and_invoices_are_invisible(
    stack: Stack, billing: Billing
) -> None:
    payer = await stack.register()
    other = await stack.register()
    await billing.subscribe(payer, "gold")
    assert (await billing.get("/billing/subscription", other)).json()["plan"] == "basic"
    assert (await billing.get("/billing/invoices", other)).json() == {
        "items": [],
        "next_cursor": None,
    }
    # Nor can the other tenant reach the payer's Stripe customer through the portal.
    assert (await billing.post("/billing/portal", other)).status_code == 409
    assert await billing.tenant_plan(other) == "basic"


async def test_the_internal_config_is_for_services_only(stack: Stack, billing: Billing) -> None:
    owner = await stack.register()
    assert (await billing.get("/billing/internal/config", owner)).status_code == 403
    answer = await billing.http.get(
        f"{billing.base}/billing/internal/config",
        headers={INTERNAL_TOKEN_HEADER: stack.running.platform.internal_token},
    )
    assert answer.json() == {"enabled": True, "paid_plans": ["premium", "gold"]}


async def test_stripe_refusing_a_call_is_a_502_that_names_no_secret(
    stack: Stack, billing: Billing, stripe: FakeStripe
) -> None:
    owner = await stack.register()
    await billing.checkout(owner, "premium")  # makes the customer
    del stripe.prices["price_gold"]
    try:
        refused = await billing.checkout(owner, "gold")
    finally:
        stripe.prices["price_gold"] = type(stripe.prices["price_premium"])("price_gold", 9000)
    assert refused.status_code == 502, refused.text
    assert stripe.api_key not in refused.text
    assert "price_gold" not in refused.text
