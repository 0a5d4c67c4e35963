"""Routes of the tenants service: thin handlers over `TenantsService`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import CurrentPrincipal, ServiceCaller
from kibitz.services.tenants.dependencies import TenantsServiceDep
from kibitz.services.tenants.schemas import (
    CatalogueRead,
    InviteCreate,
    InviteRead,
    MemberPage,
    MemberRead,
    MembershipCreated,
    PlanSummary,
    RecordUsageBatch,
    RecordUsageResult,
    ReserveBatchRequest,
    ReserveBatchResult,
    ReserveRequest,
    ReserveResult,
    SubscribeRequest,
    TenantCreate,
    TenantPlanRead,
    UsageRead,
)

router = APIRouter(prefix="/tenants", tags=["tenants"])
internal = APIRouter(
    prefix="/tenants/internal", tags=["tenants (internal)"], dependencies=[ServiceCaller]
)


async def _plan_with_usage(
    session: SessionDep, tenants: TenantsServiceDep, tenant_id: uuid.UUID
) -> dict[str, Any]:
    tenant = await tenants.tenant(session, tenant_id=tenant_id)
    return {**tenants.summary(tenant), "usage": await tenants.usage(session, tenant=tenant)}


@router.get("/plan", response_model=TenantPlanRead, responses=problem_responses(401, 404))
async def read_plan(
    principal: CurrentPrincipal, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """The caller's tenant: its plan, limits, features and this period's usage."""
    return await _plan_with_usage(session, tenants, principal.tenant_id)


@router.get("/plans", response_model=CatalogueRead, responses=problem_responses(401))
async def list_plans(_: CurrentPrincipal, tenants: TenantsServiceDep) -> dict[str, Any]:
    """Every plan of the catalogue, cheapest first."""
    return {
        "items": [
            {"id": p.id, "name": p.name, "limits": p.limits, "features": p.features}
            for p in tenants.catalogue.plans
        ]
    }


@router.post(
    "/subscribe",
    response_model=TenantPlanRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def subscribe(
    body: SubscribeRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    tenants: TenantsServiceDep,
) -> dict[str, Any]:
    """Move the tenant to another plan (owner/admin); it applies to the next request."""
    tenant = await tenants.subscribe(session, principal=principal, plan_id=body.plan)
    return await _plan_with_usage(session, tenants, tenant.id)


@router.get("/usage", response_model=UsageRead, responses=problem_responses(401, 404))
async def read_usage(
    principal: CurrentPrincipal, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """This period's counters (messages today, tokens this month) against the plan."""
    tenant = await tenants.tenant(session, tenant_id=principal.tenant_id)
    return await tenants.usage(session, tenant=tenant)


@router.get("/members", response_model=MemberPage, responses=problem_responses(401, 404))
async def list_members(
    principal: CurrentPrincipal,
    session: SessionDep,
    tenants: TenantsServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> MemberPage:
    """The members of the caller's tenant."""
    await tenants.tenant(session, tenant_id=principal.tenant_id)
    rows, next_cursor = await tenants.members(
        session, tenant_id=principal.tenant_id, limit=limit, cursor=cursor
    )
    return MemberPage(
        items=[MemberRead.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


@router.delete(
    "/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409),
)
async def remove_member(
    user_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, tenants: TenantsServiceDep
) -> Response:
    """Remove someone from the caller's tenant (owner/admin; only an owner removes an owner,
    never the last one, never yourself): their account ends, at once on every replica."""
    await tenants.departures.remove(session, principal=principal, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invites",
    response_model=InviteRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_invite(
    principal: CurrentPrincipal,
    session: SessionDep,
    tenants: TenantsServiceDep,
    body: InviteCreate | None = None,
) -> InviteRead:
    """A single-use invite code into the caller's tenant (owner/admin)."""
    role = (body or InviteCreate()).role
    invite, code = await tenants.create_invite(session, principal=principal, role=role)
    return InviteRead(code=code, role=invite.role, expires_at=invite.expires_at)


@internal.post(
    "/tenants",
    response_model=MembershipCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(403, 404, 409, 410, 422),
)
async def create_membership(
    body: TenantCreate, session: SessionDep, tenants: TenantsServiceDep
) -> MembershipCreated:
    """For auth's register: create the user's tenant, or join one by invite code (or, after
    single sign-on through a tenant's provider, that tenant)."""
    tenant, membership = await tenants.join_or_create(
        session,
        user_id=body.user_id,
        email=body.email,
        tenant_name=body.tenant_name,
        invite_code=body.invite_code,
        join_tenant_id=body.tenant_id,
    )
    return MembershipCreated(
        tenant_id=tenant.id, tenant_name=tenant.name, role=membership.role, plan=tenant.plan
    )


@internal.delete(
    "/memberships/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(403),
)
async def undo_membership(
    user_id: uuid.UUID, session: SessionDep, tenants: TenantsServiceDep
) -> Response:
    """For auth's register when the account could not be made after all (its email was taken
    meanwhile): undo what `POST /tenants/internal/tenants` did for this user."""
    await tenants.undo_join(session, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.get(
    "/memberships/{user_id}/departure",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(403, 409),
)
async def check_departure(
    user_id: uuid.UUID, session: SessionDep, tenants: TenantsServiceDep
) -> Response:
    """For auth's account deletion: 204 when the user may leave their tenant, 409 `last-owner`
    when they are the only owner of a tenant with other members."""
    await tenants.departures.check(session, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.get(
    "/tenants/{tenant_id}/plan",
    response_model=PlanSummary,
    responses=problem_responses(403, 404),
)
async def read_tenant_plan(
    tenant_id: uuid.UUID, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """A tenant's plan, limits and features (gateway, agents, chat and users read it)."""
    return tenants.summary(await tenants.tenant(session, tenant_id=tenant_id))


@internal.post(
    "/usage/reserve",
    response_model=ReserveResult,
    responses=problem_responses(403, 404, 422, 429),
)
async def reserve_usage(
    body: ReserveRequest, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """Reserve quota before doing work: atomic, and idempotent per `key`."""
    return await tenants.reserve(
        session, tenant_id=body.tenant_id, metric=body.metric, amount=body.amount, key=body.key
    )


@internal.post(
    "/usage/reserve-batch",
    response_model=ReserveBatchResult,
    responses=problem_responses(403, 422),
)
async def reserve_usage_batch(
    body: ReserveBatchRequest, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """Several reservations in one round trip; each answers as `/usage/reserve` would."""
    return {"outcomes": await tenants.reserve_many(session, reservations=body.reservations)}


@internal.post(
    "/usage/record",
    response_model=RecordUsageResult,
    responses=problem_responses(403, 422),
)
async def record_usage(
    body: RecordUsageBatch, session: SessionDep, tenants: TenantsServiceDep
) -> dict[str, Any]:
    """Count work already done (agents' OpenAI-compatible completions): once per `key`; records
    for unknown tenants are skipped."""
    recorded = await tenants.record_usage(session, records=body.records)
    return {"recorded": recorded}
