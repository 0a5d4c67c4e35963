"""Request and response shapes of the tenants routes (public and internal)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from kibitz.kit.inputs import SingleLineText


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _strip_or_none(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    return value


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
PlanId = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")]
TenantName = Annotated[
    Annotated[SingleLineText, Field(max_length=100)] | None, BeforeValidator(_strip_or_none)
]
InviteCode = Annotated[
    Annotated[SingleLineText, Field(max_length=128)] | None, BeforeValidator(_strip_or_none)
]

_LIMITS_EXAMPLE: dict[str, Any] = {
    "requests_per_minute": 60,
    "messages_per_day": 100,
    "agents": 3,
    "tokens_per_month": 100000,
    "models": ["echo", "small"],
}


class Strict(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


class MeterRead(BaseModel):
    """One metered quantity this period."""

    used: int
    limit: int
    remaining: int
    period: str
    resets_at: UtcDatetime


class UsageRead(BaseModel):
    """This period's counters of a tenant."""

    tenant_id: uuid.UUID
    plan: str
    messages: MeterRead
    tokens: MeterRead


class PlanSummary(BaseModel):
    """A tenant's plan, limits and features (what other services read)."""

    tenant_id: uuid.UUID
    tenant_name: str
    plan: str
    limits: dict[str, Any] = Field(json_schema_extra={"example": _LIMITS_EXAMPLE})
    features: list[str]


class TenantPlanRead(PlanSummary):
    """The caller's tenant, plan and usage."""

    usage: UsageRead


class CataloguePlanRead(BaseModel):
    """One plan of the catalogue."""

    id: str
    name: str
    limits: dict[str, Any]
    features: list[str]


class CatalogueRead(BaseModel):
    """Every plan, cheapest first."""

    items: list[CataloguePlanRead]


class SubscribeRequest(Strict):
    """Which plan to move the tenant to."""

    plan: PlanId


class MemberRead(BaseModel):
    """A member of the tenant."""

    user_id: uuid.UUID
    email: str
    role: str
    joined_at: UtcDatetime


class MemberPage(BaseModel):
    """A page of members."""

    items: list[MemberRead]
    next_cursor: str | None


class InviteCreate(Strict):
    """The role the invited user will hold (never owner)."""

    role: Literal["member", "admin"] = "member"


class InviteRead(BaseModel):
    """A new single-use invite; the code is shown only here."""

    code: str
    role: str
    expires_at: UtcDatetime


class TenantCreate(Strict):
    """Internal: a new user's tenant (created, or joined by invite or single sign-on)."""

    user_id: uuid.UUID
    email: Annotated[str, Field(min_length=3, max_length=254)]
    tenant_name: TenantName = None
    invite_code: InviteCode = None
    # Join this tenant as a member: auth vouches (the tenant's own identity provider signed the
    # person in).
    tenant_id: uuid.UUID | None = None


class MembershipCreated(BaseModel):
    """Internal: where the new user belongs."""

    tenant_id: uuid.UUID
    tenant_name: str
    role: str
    plan: str


class ReserveRequest(Strict):
    """Internal: reserve quota before doing work; `key` makes a retry count once."""

    tenant_id: uuid.UUID
    metric: Literal["messages", "tokens"]
    amount: Annotated[int, Field(ge=0, le=10_000_000)] = 1
    key: Annotated[str, Field(min_length=1, max_length=200)]


class RecordUsage(Strict):
    """Internal: work already done to count (tokens of a completion no event reports); `key`
    makes a retry count once."""

    tenant_id: uuid.UUID
    metric: Literal["tokens"]
    amount: Annotated[int, Field(ge=0, le=10_000_000)]
    key: Annotated[str, Field(min_length=1, max_length=200)]


class RecordUsageBatch(Strict):
    """Internal: several records in one round trip (what piled up during the last one)."""

    records: Annotated[list[RecordUsage], Field(min_length=1, max_length=100)]


class RecordUsageResult(BaseModel):
    """Internal: each record was counted (or had been, under its key)."""

    recorded: int


class ReserveResult(BaseModel):
    """Internal: the reservation was granted."""

    allowed: bool
    used: int
    limit: int
    remaining: int


# 100: what one chat process piles up during one round trip under heavy load, with room to spare.
RESERVE_BATCH_MAX = 100


class ReserveBatchRequest(Strict):
    """Internal: several reservations in one round trip, each granted or refused on its own."""

    reservations: Annotated[list[ReserveRequest], Field(min_length=1, max_length=RESERVE_BATCH_MAX)]


class ReserveOutcome(BaseModel):
    """Internal: one reservation's answer, as the single route would give it."""

    status: int
    reservation: ReserveResult | None = None
    # For a refusal: the problem+json document and the headers (`Retry-After`) it came with.
    problem: dict[str, Any] | None = None
    headers: dict[str, str] = {}


class ReserveBatchResult(BaseModel):
    """Internal: one outcome per reservation asked for, in order."""

    outcomes: list[ReserveOutcome]
