"""The single sign-on routes: sign-in options, the browser's round trip through a provider, the
tenant's own provider, and the caller's password beside their linked identities."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import Unprocessable, problem_responses
from kibitz.kit.security import CurrentPrincipal
from kibitz.services.auth.api import set_refresh_cookie
from kibitz.services.auth.dependencies import SsoServiceDep, request_is_https
from kibitz.services.auth.sso.errors import SignInFailed
from kibitz.services.auth.sso.login_state import COOKIE_NAME, COOKIE_PATH, web_app_path
from kibitz.services.auth.sso.schemas import (
    PasswordSet,
    ProviderList,
    ProviderRead,
    TenantProviderRead,
    TenantProviderWrite,
)
from kibitz.services.auth.sso.service import TenantProviderView

logger = structlog.get_logger("kibitz.auth.sso")

router = APIRouter(prefix="/auth", tags=["single sign-on"])

ProviderId = Annotated[str, Path(max_length=64)]
# Long enough for any provider's code and state; anything longer is not theirs.
_CallbackValue = Annotated[str | None, Query(max_length=2048)]


class InvalidRedirect(Unprocessable):
    problem_type = "invalid-redirect"

    def __init__(self) -> None:
        message = "must be a path of this web app, such as /dashboard"
        super().__init__(
            f"redirect: {message}", extra={"errors": [{"field": "redirect", "message": message}]}
        )


# Read by the web app's start-up (web/src/lib/auth-session.ts).
SESSION_MARKER_COOKIE = "kibitz-has-session"


def _to_login(code: str) -> RedirectResponse:
    # The code only: never a token, a provider's words or a stack trace in a URL.
    return RedirectResponse(f"/login?{urlencode({'error': code})}", status_code=302)


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"


@router.get(
    "/sso/providers",
    response_model=ProviderList,
    summary="Sign-in options",
    description=(
        "The deployment's identity providers; with `email`, the tenant's own provider first "
        "when that email's domain belongs to a tenant with single sign-on (only it when the "
        "tenant enforces it)."
    ),
    responses=problem_responses(422),
)
async def list_providers(
    sso: SsoServiceDep, email: Annotated[str | None, Query(max_length=254)] = None
) -> ProviderList:
    options = await sso.providers_for(email=email.strip().lower() if email else None)
    return ProviderList(
        items=[ProviderRead(id=option.id, name=option.name, kind=option.kind) for option in options]
    )


def _tenant_provider_read(view: TenantProviderView) -> TenantProviderRead:
    return TenantProviderRead(
        id=view.provider.id,
        issuer=view.provider.issuer,
        client_id=view.provider.client_id,
        domains=view.domains,
        enforce=view.provider.enforce,
        redirect_uri=view.redirect_uri,
        created_at=view.provider.created_at,
        updated_at=view.provider.updated_at,
    )


@router.get(
    "/sso/tenant",
    response_model=TenantProviderRead,
    summary="The tenant's identity provider",
    description="Owner only. The client secret is never returned.",
    responses=problem_responses(401, 403, 404),
)
async def read_tenant_provider(
    principal: CurrentPrincipal, session: SessionDep, sso: SsoServiceDep
) -> TenantProviderRead:
    return _tenant_provider_read(await sso.tenant_provider(session, principal=principal))


@router.put(
    "/sso/tenant",
    response_model=TenantProviderRead,
    summary="Set the tenant's identity provider",
    description=(
        "Owner only. `client_secret` is stored encrypted and may be omitted to keep the stored "
        "one. A domain another tenant has claimed answers 409. With `enforce`, people of these "
        "domains in this tenant cannot log in or register with a password."
    ),
    responses=problem_responses(401, 403, 409, 422),
)
async def write_tenant_provider(
    body: TenantProviderWrite,
    principal: CurrentPrincipal,
    session: SessionDep,
    sso: SsoServiceDep,
) -> TenantProviderRead:
    view = await sso.configure_tenant_provider(
        session,
        principal=principal,
        issuer=body.issuer.strip(),
        client_id=body.client_id,
        client_secret=body.client_secret,
        domains=body.domains,
        enforce=body.enforce,
    )
    return _tenant_provider_read(view)


@router.delete(
    "/sso/tenant",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the tenant's identity provider",
    description="Owner only. Its domains are released and enforcement ends.",
    responses=problem_responses(401, 403, 404),
)
async def delete_tenant_provider(
    principal: CurrentPrincipal, session: SessionDep, sso: SsoServiceDep
) -> Response:
    await sso.remove_tenant_provider(session, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sso/{provider_id}/start",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    summary="Start signing in through a provider",
    description=(
        "A browser navigation: 302 to the provider (authorization code with PKCE, `state`, "
        "`nonce`), with the sign-in sealed in a short-lived `kibitz_sso` cookie. `redirect` "
        "must be a path of the web app; `login_hint` (an email) is passed on to the provider."
    ),
    responses={
        302: {"description": "To the identity provider, or to `/login?error=…`."},
        **problem_responses(422),
    },
)
async def start_sign_in(
    provider_id: ProviderId,
    request: Request,
    sso: SsoServiceDep,
    redirect: Annotated[str | None, Query(max_length=512)] = None,
    login_hint: Annotated[str | None, Query(max_length=254)] = None,
) -> Response:
    target = web_app_path(redirect)
    if target is None:
        raise InvalidRedirect()
    try:
        url, cookie = await sso.start_sign_in(
            provider_id=provider_id, redirect=target, login_hint=login_hint
        )
    except SignInFailed as failure:
        logger.warning("sso_start_failed", code=failure.code, reason=failure.reason)
        return _to_login(failure.code)
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    _no_store(response)
    # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=sso.seal.max_age_seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request_is_https(request),
    )
    return response


@router.get(
    "/sso/{provider_id}/callback",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    summary="Where the provider sends the browser back",
    description=(
        "Checks `state` against the browser's `kibitz_sso` cookie (each works once), redeems "
        "`code`, checks the ID token, and signs the person in (or up): 302 into the web app "
        "with the `kibitz_refresh` cookie set. Any failure: 302 to `/login?error=<code>`."
    ),
    responses={302: {"description": "Into the web app, or to `/login?error=…`."}},
)
async def finish_sign_in(
    provider_id: ProviderId,
    request: Request,
    sso: SsoServiceDep,
    code: _CallbackValue = None,
    state: _CallbackValue = None,
    error: _CallbackValue = None,
) -> Response:
    try:
        issued, redirect = await sso.finish_sign_in(
            provider_id=provider_id,
            cookie=request.cookies.get(COOKIE_NAME),
            code=code,
            state=state,
            error=error,
        )
    except SignInFailed as failure:
        logger.warning("sso_sign_in_failed", code=failure.code, reason=failure.reason)
        response: Response = _to_login(failure.code)
    else:
        response = RedirectResponse(redirect, status_code=status.HTTP_302_FOUND)
        set_refresh_cookie(request, response, issued.refresh_token)
        # No secret: tells the web app it holds a refresh cookie now (it cannot read that one,
        # and asks for no refresh on a page load without a sign of a session). 60 s: the landing
        # page reads it at once.
        response.set_cookie(
            SESSION_MARKER_COOKIE,
            "1",
            max_age=60,
            path="/",
            httponly=False,
            samesite="lax",
            secure=request_is_https(request),
        )
    _no_store(response)
    response.delete_cookie(
        COOKIE_NAME,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request_is_https(request),
    )
    return response


@router.put(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Add or change the caller's password",
    description="Changing an existing password needs `current_password` (403 when wrong).",
    responses=problem_responses(401, 403, 422),
)
async def set_password(
    body: PasswordSet, principal: CurrentPrincipal, sso: SsoServiceDep
) -> Response:
    await sso.set_password(
        user_id=principal.user_id,
        password=body.password,
        current_password=body.current_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove the caller's password",
    description="Only while a linked identity remains a way in (409 otherwise).",
    responses=problem_responses(401, 409),
)
async def remove_password(
    principal: CurrentPrincipal, session: SessionDep, sso: SsoServiceDep
) -> Response:
    await sso.remove_password(session, user_id=principal.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
