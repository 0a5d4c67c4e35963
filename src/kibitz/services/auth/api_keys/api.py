"""The API key routes: thin handlers over `ApiKeyService`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal, ServiceCaller
from kibitz.services.auth.api_keys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyExchangeRequest,
    ApiKeyIdentity,
    ApiKeyPage,
    ApiKeyRead,
    ListScope,
)
from kibitz.services.auth.api_keys.service import ApiKeyService

router = APIRouter(prefix="/auth/api-keys", tags=["api keys"])
internal = APIRouter(
    prefix="/auth/internal/api-keys", tags=["api keys (internal)"], dependencies=[ServiceCaller]
)


async def _api_key_service(request: Request) -> ApiKeyService:
    service: ApiKeyService = request.app.state.api_key_service
    return service


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(_api_key_service)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    description=(
        "A personal API key (`kbz_…`) that acts as you, within your tenant and role, on every "
        "API route: `Authorization: Bearer kbz_…`. The key is in this answer only; it is stored "
        "hashed and cannot be shown again. Not with another API key (403)."
    ),
    responses=problem_responses(401, 403, 409, 422),
)
async def create_api_key(
    body: ApiKeyCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    keys: ApiKeyServiceDep,
    response: Response,
) -> ApiKeyCreated:
    created = await keys.create(
        session, principal=principal, name=body.name, expires_at=body.expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    record = created.record
    return ApiKeyCreated(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        key=created.key,
        created_at=record.created_at,
        expires_at=record.expires_at,
    )


@router.get(
    "",
    response_model=ApiKeyPage,
    summary="API keys",
    description=(
        "Your working API keys, newest first (never the key itself). With `scope=tenant`, "
        "owners and admins see every key of the tenant."
    ),
    responses=problem_responses(401, 403, 422),
)
async def list_api_keys(
    principal: CurrentPrincipal,
    session: SessionDep,
    keys: ApiKeyServiceDep,
    scope: ListScope = "mine",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ApiKeyPage:
    rows, next_cursor = await keys.list_keys(
        session, principal=principal, whole_tenant=scope == "tenant", limit=limit, cursor=cursor
    )
    return ApiKeyPage(
        items=[
            ApiKeyRead(
                id=record.id,
                name=record.name,
                prefix=record.prefix,
                created_at=record.created_at,
                last_used_at=record.last_used_at,
                expires_at=record.expires_at,
                user_id=record.user_id,
                user_email=email,
            )
            for record, email in rows
        ],
        next_cursor=next_cursor,
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke an API key",
    description=(
        "The key stops working at once, on every gateway. Owners and admins may revoke any key "
        "of the tenant; 404 for a key you may not see."
    ),
    responses=problem_responses(401, 404, 422),
)
async def revoke_api_key(
    key_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, keys: ApiKeyServiceDep
) -> Response:
    await keys.revoke(session, principal=principal, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.post(
    "/exchange",
    response_model=ApiKeyIdentity,
    summary="Exchange an API key for an access token (gateway)",
    responses=problem_responses(401, 403, 422),
)
async def exchange_api_key(
    body: ApiKeyExchangeRequest, session: SessionDep, keys: ApiKeyServiceDep, response: Response
) -> ApiKeyIdentity:
    identity = await keys.exchange(session, key=body.key)
    response.headers["Cache-Control"] = "no-store"
    user = identity.user
    return ApiKeyIdentity(
        key_id=identity.key_id,
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role,
        access_token=identity.access_token,
        expires_in=identity.expires_in,
        key_expires_at=identity.key_expires_at,
    )
