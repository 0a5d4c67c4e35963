"""Routes of the users service: thin handlers over `UsersService`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import problem_responses
from kibitz.kit.security import ActingPrincipal, CurrentPrincipal, bearer_token
from kibitz.services.users.dependencies import UsersServiceDep
from kibitz.services.users.models import Profile
from kibitz.services.users.schemas import PreferencesRead, ProfileRead, ProfileUpdate
from kibitz.services.users.service import UsersService

router = APIRouter(prefix="/users", tags=["users"])


async def _read(users: UsersService, profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "auth_user_id": profile.auth_user_id,
        "email": profile.email,
        "full_name": profile.full_name,
        "avatar_url": profile.avatar_url,
        "preferences": profile.preferences or {},
        "subscription": await users.subscription(tenant_id=profile.tenant_id),
    }


@router.get("/me", response_model=ProfileRead, responses=problem_responses(401, 404, 503))
async def read_me(
    principal: CurrentPrincipal, session: SessionDep, users: UsersServiceDep
) -> dict[str, Any]:
    """The caller's profile, preferences and subscription."""
    return await _read(users, await users.profile(session, principal=principal))


# 16 KiB: a profile patch is a few hundred bytes; anything near this is not one.
MAX_PATCH_BYTES = 16 * 1024


@router.patch(
    "/me",
    response_model=ProfileRead,
    responses=problem_responses(401, 404, 413, 422, 503),
    max_body_size=MAX_PATCH_BYTES,
)
async def update_me(
    request: Request,
    changes: ProfileUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    users: UsersServiceDep,
) -> dict[str, Any]:
    """Change the name, avatar or preferences (preference keys are merged)."""
    profile = await users.update(
        session, principal=principal, changes=changes, access_token=bearer_token(request) or ""
    )
    return await _read(users, profile)


@router.get(
    "/internal/preferences",
    response_model=PreferencesRead,
    responses=problem_responses(403, 404, 503),
    summary="A user's preferences, for a kibitz service acting for them",
    tags=["users (internal)"],
)
async def read_preferences_for_user(
    principal: ActingPrincipal, session: SessionDep, users: UsersServiceDep
) -> dict[str, Any]:
    """The preferences of the user a service names beside its credential (403 without it):
    chat reads `propose_titles` after a reply, when the user's token may have lapsed."""
    profile = await users.profile(session, principal=principal)
    return {"preferences": profile.preferences or {}}
