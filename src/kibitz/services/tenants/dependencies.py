"""Request-scoped dependencies: the session and the tenants service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.services.tenants.service import TenantsService


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.transaction() as session:
        yield session


# scope="function": the commit happens before the answer leaves, so a client reads its writes.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


def _tenants_service(request: Request) -> TenantsService:
    service: TenantsService = request.app.state.tenants_service
    return service


TenantsServiceDep = Annotated[TenantsService, Depends(_tenants_service)]
