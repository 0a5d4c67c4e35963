"""Request-scoped dependencies: the users service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kibitz.services.users.service import UsersService


async def _users_service(request: Request) -> UsersService:
    service: UsersService = request.app.state.users_service
    return service


UsersServiceDep = Annotated[UsersService, Depends(_users_service)]
