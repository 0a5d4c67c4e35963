"""The auth routes: thin handlers that parse, call the service and shape the answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal, ServiceCaller
from kibitz.services.auth.dependencies import (
    AuthServiceDep,
    ClientIp,
    SsoServiceDep,
    request_is_https,
)
from kibitz.services.auth.errors import MissingRefreshToken
from kibitz.services.auth.schemas import (
    AuthenticatedSession,
    InternalUserRead,
    Jwks,
    LinkedIdentityRead,
    LoginRequest,
    MeRead,
    RefreshRequest,
    RegisterRequest,
    SessionRevocationPage,
    SessionRevocationRead,
    UserRead,
    as_utc,
)
from kibitz.services.auth.sessions.service import IssuedSession

router = APIRouter(prefix="/auth", tags=["auth"])

REFRESH_COOKIE = "kibitz_refresh"
WEB_CLIENT_HEADER = "x-kibitz-client"


def _is_web_client(request: Request) -> bool:
    return request.headers.get(WEB_CLIENT_HEADER, "").strip().lower() == "web"


def set_refresh_cookie(request: Request, response: Response, refresh_token: str) -> None:
    """Set the refresh token as the browser's `kibitz_refresh` cookie."""
    # Path=/auth: the browser sends it to refresh/logout only; JS never sees it (HttpOnly).
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=request.app.state.auth_settings.refresh_token_seconds,
        path="/auth",
        httponly=True,
        samesite="strict",
        secure=request_is_https(request),
    )


def _clear_refresh_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE,
        path="/auth",
        httponly=True,
        samesite="strict",
        secure=request_is_https(request),
    )


def _session_body(issued: IssuedSession, response: Response) -> AuthenticatedSession:
    # RFC 6749 5.1: answers carrying tokens must not be cached.
    response.headers["Cache-Control"] = "no-store"
    return AuthenticatedSession(
        user=UserRead.model_validate(issued.user),
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


def _refresh_token_of(request: Request, body: RefreshRequest | None) -> tuple[str, bool]:
    """The token from the JSON body, else from the cookie; and whether the cookie carried it."""
    if body is not None and body.refresh_token:
        return body.refresh_token, False
    cookie = request.cookies.get(REFRESH_COOKIE, "")
    if cookie and len(cookie) <= 256:
        return cookie, True
    raise MissingRefreshToken()


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=AuthenticatedSession,
    summary="Create an account",
    description=(
        "A new tenant on the Basic plan with the user as owner, or with `invite_code` the "
        "invite's tenant. With `X-Kibitz-Client: web` the refresh token is also set as the "
        "`kibitz_refresh` cookie (HttpOnly, SameSite=Strict, Path=/auth)."
    ),
    responses=problem_responses(404, 409, 410, 422, 503),
)
async def register(
    body: RegisterRequest, request: Request, response: Response, auth: AuthServiceDep
) -> AuthenticatedSession:
    issued = await auth.register(
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        tenant_name=body.tenant_name,
        invite_code=body.invite_code,
    )
    if _is_web_client(request):
        set_refresh_cookie(request, response, issued.refresh_token)
    return _session_body(issued, response)


@router.post(
    "/login",
    response_model=AuthenticatedSession,
    summary="Log in",
    description=(
        "The same 401 for an unknown email and a wrong password. Failed logins are slowed per "
        "account and client address and per address: after a few free ones each attempt "
        "waits a delay that doubles with every further failure (429 with `Retry-After`); the "
        "owner signing in from another address is not held up. An account guessed at from "
        "very many addresses meets a far higher ceiling."
    ),
    responses=problem_responses(401, 422, 429),
)
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    ip: ClientIp,
) -> AuthenticatedSession:
    issued = await auth.login(email=body.email, password=body.password, client_ip=ip)
    if _is_web_client(request):
        set_refresh_cookie(request, response, issued.refresh_token)
    return _session_body(issued, response)


@router.post(
    "/refresh",
    response_model=AuthenticatedSession,
    summary="Rotate the refresh token",
    description=(
        "Spends the refresh token and answers a new pair. A spent token presented again revokes "
        "its whole family (the newest token included): 401. Browsers may send `{}` and let the "
        "`kibitz_refresh` cookie carry the token."
    ),
    responses=problem_responses(401, 422),
)
async def refresh(
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    body: RefreshRequest | None = None,
) -> AuthenticatedSession:
    token, from_cookie = _refresh_token_of(request, body)
    issued = await auth.sessions.refresh(refresh_token=token)
    if from_cookie or _is_web_client(request):
        set_refresh_cookie(request, response, issued.refresh_token)
    return _session_body(issued, response)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Log out",
    description="Revokes the refresh token's family and clears the `kibitz_refresh` cookie.",
    responses=problem_responses(422),
)
async def logout(
    request: Request, auth: AuthServiceDep, body: RefreshRequest | None = None
) -> Response:
    token, _ = _refresh_token_of(request, body)
    await auth.sessions.logout(refresh_token=token)
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_refresh_cookie(request, answer)
    return answer


@router.get(
    "/me",
    response_model=MeRead,
    summary="The caller's account",
    responses=problem_responses(401),
)
async def me(
    principal: CurrentPrincipal, session: SessionDep, auth: AuthServiceDep, sso: SsoServiceDep
) -> MeRead:
    user = await auth.get_user(session, user_id=principal.user_id)
    identities = await sso.identities(session, user_id=user.id)
    return MeRead(
        id=user.id,
        email=user.email,
        tenant_id=user.tenant_id,
        role=user.role,
        created_at=user.created_at,
        has_password=user.password_hash is not None,
        identities=[
            LinkedIdentityRead(
                provider_id=view.identity.provider_id,
                provider_name=view.provider_name,
                email=view.identity.email,
                linked_at=view.identity.created_at,
            )
            for view in identities
        ],
    )


@router.get(
    "/jwks",
    response_model=Jwks,
    summary="Public signing keys",
    description="Every key that may have signed a live access token (EdDSA, Ed25519).",
)
async def jwks(response: Response, auth: AuthServiceDep) -> dict[str, Any]:
    # 5 min: verifiers refetch on an unknown kid anyway.
    response.headers["Cache-Control"] = "public, max-age=300"
    return await auth.keys.jwks()


@router.get(
    "/internal/session-revocations",
    response_model=SessionRevocationPage,
    summary="Revoked sessions whose access tokens may still be live, for other kibitz services",
    description=(
        "Every process's JWT check refuses these sessions' tokens; it hears of new ones on the "
        "bus (`auth.session_revoked`) and asks here at start and for any it missed, with "
        "`since` the `now` of its previous answer (less a few seconds)."
    ),
    dependencies=[ServiceCaller],
    responses=problem_responses(403, 422),
)
async def session_revocations(
    session: SessionDep, auth: AuthServiceDep, since: datetime | None = None
) -> SessionRevocationPage:
    now, revocations = await auth.sessions.session_revocations(
        session, since=as_utc(since) if since is not None else None
    )
    return SessionRevocationPage(
        now=now,
        items=[
            SessionRevocationRead(session_id=item.session_id, expires_at=as_utc(item.expires_at))
            for item in revocations
        ],
    )


@router.get(
    "/internal/users/{user_id}",
    response_model=InternalUserRead,
    summary="A user, for other kibitz services",
    dependencies=[ServiceCaller],
    responses=problem_responses(403, 404, 422),
)
async def internal_user(
    user_id: uuid.UUID, session: SessionDep, auth: AuthServiceDep
) -> InternalUserRead:
    user = await auth.find_user(session, user_id=user_id)
    return InternalUserRead.model_validate(user)
