"""Request-scoped dependencies: the session, the users service, a body size cap."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kibitz.services.users.errors import BodyTooLarge
from kibitz.services.users.service import UsersService

# 16 KiB: a profile patch is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 16 * 1024


async def _users_service(request: Request) -> UsersService:
    service: UsersService = request.app.state.users_service
    return service


UsersServiceDep = Annotated[UsersService, Depends(_users_service)]


async def limit_body(request: Request) -> None:
    """413 when the body is larger than a profile patch can be."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(MAX_BODY_BYTES)
    if len(await request.body()) > MAX_BODY_BYTES:
        raise BodyTooLarge(MAX_BODY_BYTES)


BodyLimit = Depends(limit_body)
