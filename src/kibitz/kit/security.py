"""Who is calling: the user behind an access token, or another kibitz service."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import Depends, Request

from kibitz.kit.errors import Forbidden, Unauthorized
from kibitz.kit.http import ACTING_TENANT_HEADER, ACTING_USER_HEADER, INTERNAL_TOKEN_HEADER
from kibitz.kit.jwt import InvalidToken, Principal, TokenVerifier


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The verified caller, or 401."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Missing bearer token.")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return await verifier.verify(token)
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired access token.") from exc


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def require_service_caller(request: Request) -> None:
    """Allow only callers that present the internal service credential (403 otherwise)."""
    expected: str = request.app.state.internal_token
    presented = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden("This route is for kibitz services only.")


ServiceCaller = Depends(require_service_caller)

# The role a service acting for a user holds: the least, whatever the user's own (a service
# acting for someone never administers their tenant).
ACTING_ROLE = "member"


async def acting_principal(request: Request) -> Principal:
    """The user a kibitz service acts for (`kit.http.acting_for`): only beside the internal
    service credential (403 otherwise), so a route scopes by them as by a user's token."""
    await require_service_caller(request)
    try:
        tenant_id = uuid.UUID(request.headers.get(ACTING_TENANT_HEADER, ""))
        user_id = uuid.UUID(request.headers.get(ACTING_USER_HEADER, ""))
    except ValueError as exc:
        raise Forbidden("A service acting for a user must name the user and tenant.") from exc
    return Principal(user_id=user_id, tenant_id=tenant_id, role=ACTING_ROLE, token_id="")


ActingPrincipal = Annotated[Principal, Depends(acting_principal)]


def require_role(principal: Principal, *roles: str) -> None:
    """403 unless the principal holds one of the roles."""
    if principal.role not in roles:
        raise Forbidden(f"This action needs the {' or '.join(roles)} role.")
