"""The account route: the signed-in person deletes their own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal
from kibitz.services.auth.accounts.schemas import AccountDeletion
from kibitz.services.auth.accounts.service import AccountService

router = APIRouter(prefix="/auth", tags=["auth"])


async def _account_service(request: Request) -> AccountService:
    service: AccountService = request.app.state.account_service
    return service


AccountServiceDep = Annotated[AccountService, Depends(_account_service)]


@router.delete(
    "/account",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete the caller's account",
    description=(
        "Ends every session and API key at once and deletes the credentials; every service "
        "then erases the person's data (`auth.account_deleted`). 403 when the password is "
        "wrong (or, without a password, the sign-in is older than 10 minutes); 409 `last-owner` "
        "for the only owner of a tenant others still belong to."
    ),
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def delete_account(
    body: AccountDeletion, principal: CurrentPrincipal, accounts: AccountServiceDep
) -> Response:
    """Delete the caller's account (the password confirms it)."""
    await accounts.delete_own(principal=principal, password=body.password)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    # The browser's refresh cookie names a session that no longer exists.
    response.delete_cookie("kibitz_refresh", path="/auth")
    return response
