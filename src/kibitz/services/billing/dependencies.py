"""Request-scoped dependencies: the billing service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kibitz.services.billing.service import BillingService


async def _billing_service(request: Request) -> BillingService:
    service: BillingService = request.app.state.billing_service
    return service


BillingServiceDep = Annotated[BillingService, Depends(_billing_service)]
