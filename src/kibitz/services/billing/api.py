"""Routes of the billing service: thin handlers over `BillingService`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal, ServiceCaller
from kibitz.services.billing.dependencies import BillingServiceDep
from kibitz.services.billing.schemas import (
    BillingConfigRead,
    BillingInternalConfig,
    CheckoutRequest,
    InvoicePage,
    InvoiceRead,
    RedirectRead,
    SubscriptionRead,
    WebhookAck,
)
from kibitz.services.billing.service import as_utc

router = APIRouter(prefix="/billing", tags=["billing"])
internal = APIRouter(
    prefix="/billing/internal", tags=["billing (internal)"], dependencies=[ServiceCaller]
)
# 256 KiB: Stripe's events are a few KiB; anything far bigger is not from Stripe.
_MAX_WEBHOOK_BYTES = 256 * 1024


@router.get("/config", response_model=BillingConfigRead, responses=problem_responses(401))
async def read_config(_: CurrentPrincipal, billing: BillingServiceDep) -> dict[str, Any]:
    """Whether billing is on, and each paid plan's Stripe price."""
    return billing.config()


@router.post(
    "/checkout",
    response_model=RedirectRead,
    responses=problem_responses(401, 403, 409, 422, 502, 503),
)
async def checkout(
    body: CheckoutRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    billing: BillingServiceDep,
) -> dict[str, str]:
    """A Stripe Checkout session buying a paid plan for the caller's tenant (owner/admin)."""
    url = await billing.checkout(
        session, principal=principal, plan=body.plan, now=datetime.now(UTC)
    )
    return {"url": url}


@router.post(
    "/portal", response_model=RedirectRead, responses=problem_responses(401, 403, 409, 502, 503)
)
async def portal(
    principal: CurrentPrincipal, session: SessionDep, billing: BillingServiceDep
) -> dict[str, str]:
    """A Stripe customer portal session for the caller's tenant (owner/admin)."""
    return {"url": await billing.portal(session, principal=principal)}


@router.get("/subscription", response_model=SubscriptionRead, responses=problem_responses(401))
async def read_subscription(
    principal: CurrentPrincipal, session: SessionDep, billing: BillingServiceDep
) -> dict[str, Any]:
    """The caller's tenant's subscription, as Stripe's webhooks described it."""
    return await billing.subscription_view(
        session, tenant_id=principal.tenant_id, now=datetime.now(UTC)
    )


@router.get("/invoices", response_model=InvoicePage, responses=problem_responses(401, 403))
async def list_invoices(
    principal: CurrentPrincipal,
    session: SessionDep,
    billing: BillingServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> InvoicePage:
    """The caller's tenant's invoices, newest first (owner/admin)."""
    rows, next_cursor = await billing.invoices(
        session, principal=principal, limit=limit, cursor=cursor
    )
    return InvoicePage(
        items=[
            InvoiceRead(
                id=row.stripe_invoice_id,
                number=row.number,
                status=row.status,
                amount_due=row.amount_due,
                amount_paid=row.amount_paid,
                currency=row.currency,
                hosted_invoice_url=row.hosted_invoice_url,
                period_start=as_utc(row.period_start),
                period_end=as_utc(row.period_end),
                created_at=as_utc(row.stripe_created) or row.stripe_created,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/webhook",
    response_model=WebhookAck,
    responses=problem_responses(400, 409, 413, 503),
    max_body_size=_MAX_WEBHOOK_BYTES,
)
async def webhook(
    request: Request,
    session: SessionDep,
    billing: BillingServiceDep,
    stripe_signature: Annotated[str | None, Header(max_length=2000)] = None,
) -> dict[str, bool]:
    """Stripe's webhook (public): the raw body is verified, then each event id applied once."""
    payload = await request.body()  # within _MAX_WEBHOOK_BYTES
    first_time = await billing.handle_webhook(
        session, payload=bytes(payload), signature=stripe_signature, now=datetime.now(UTC)
    )
    return {"received": True, "duplicate": not first_time}


@internal.get("/config", response_model=BillingInternalConfig, responses=problem_responses(403))
async def read_internal_config(billing: BillingServiceDep) -> dict[str, Any]:
    """For tenants: whether paid plans start and end only through billing, and which are paid."""
    return billing.internal_config()
