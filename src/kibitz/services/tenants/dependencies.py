"""Request-scoped dependencies: the session and the tenants service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kibitz.services.tenants.service import TenantsService


async def _tenants_service(request: Request) -> TenantsService:
    service: TenantsService = request.app.state.tenants_service
    return service


TenantsServiceDep = Annotated[TenantsService, Depends(_tenants_service)]
