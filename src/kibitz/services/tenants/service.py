"""Business rules of tenants: plans, memberships, invites, metered usage. Flushes only."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.contracts.events import (
    MessageCompleted,
    PlanChanged,
    SubscriptionChanged,
)
from kibitz.kit.errors import ProblemError
from kibitz.kit.events import Outbox
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.services.tenants import repository
from kibitz.services.tenants.agent_counts import AgentCounts
from kibitz.services.tenants.billing_status import BillingStatus
from kibitz.services.tenants.catalogue import Catalogue, Plan
from kibitz.services.tenants.departures import Departures
from kibitz.services.tenants.errors import (
    BillingRequired,
    DowngradeRefused,
    InviteExpiredError,
    InviteNotFound,
    InviteUsed,
    QuotaExceeded,
    RoleRequired,
    TenantNotFound,
    UnknownPlanError,
)
from kibitz.services.tenants.models import Invite, Membership, Tenant
from kibitz.services.tenants.schemas import RecordUsage, ReserveRequest

logger = structlog.get_logger("kibitz.tenants")

ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER = "owner", "admin", "member"
MANAGERS = (ROLE_OWNER, ROLE_ADMIN)
# Metric -> the plan limit that caps it.
METRIC_LIMITS = {"messages": "messages_per_day", "tokens": "tokens_per_month"}


def hash_code(code: str) -> str:
    """SHA-256 of an invite code: the code itself is never stored."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class Period:
    """A metering period: its label and when the next one starts."""

    label: str
    resets_at: datetime


def period_of(metric: str, at: datetime) -> Period:
    """Messages are counted per UTC day, tokens per UTC calendar month."""
    at = at.astimezone(UTC)
    if metric == "messages":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return Period(start.strftime("%Y-%m-%d"), start + timedelta(days=1))
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(start.strftime("%Y-%m"), following)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class TenantsService:
    """Rules of the tenants domain."""

    def __init__(
        self,
        *,
        catalogue: Catalogue,
        outbox: Outbox,
        invite_ttl_hours: int,
        agent_counts: AgentCounts | None = None,
        billing: BillingStatus | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.outbox = outbox
        # Members leaving: removed by an owner or admin, or gone with their account.
        self.departures = Departures(outbox=outbox, roles=self)
        self.invite_ttl = timedelta(hours=invite_ttl_hours)
        self.agent_counts = agent_counts
        self.billing = billing

    # -- plans ------------------------------------------------------------------------------

    def plan_of(self, tenant: Tenant) -> Plan:
        """The catalogue entry of the tenant's plan (the default plan if it left the catalogue)."""
        return self.plan_named(tenant.plan)

    def plan_named(self, plan_id: str) -> Plan:
        """The catalogue entry of a plan id (the default plan if it left the catalogue)."""
        plan = self.catalogue.get(plan_id)
        if plan is None:
            fallback = self.catalogue.get(self.catalogue.default_plan)
            assert fallback is not None
            return fallback
        return plan

    def summary(self, tenant: Tenant) -> dict[str, Any]:
        """The tenant's plan, effective limits (overrides applied) and features."""
        plan = self.plan_of(tenant)
        return {
            "tenant_id": tenant.id,
            "tenant_name": tenant.name,
            "plan": plan.id,
            "limits": plan.with_overrides(tenant.limits),
            "features": list(plan.features),
        }

    async def tenant(self, session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant:
        """The tenant, or 404."""
        tenant = await repository.get_tenant(session, tenant_id=tenant_id)
        if tenant is None:
            raise TenantNotFound()
        return tenant

    async def usage(self, session: AsyncSession, *, tenant: Tenant) -> dict[str, Any]:
        """This period's counters against the tenant's limits."""
        limits = self.summary(tenant)["limits"]
        now = datetime.now(UTC)
        meters: dict[str, Any] = {}
        for metric, limit_name in METRIC_LIMITS.items():
            period = period_of(metric, now)
            used = await repository.usage(
                session, tenant_id=tenant.id, metric=metric, period=period.label
            )
            limit = int(limits[limit_name])
            meters[metric] = {
                "used": used,
                "limit": limit,
                "remaining": max(limit - used, 0),
                "period": period.label,
                "resets_at": period.resets_at,
            }
        return {"tenant_id": tenant.id, "plan": tenant.plan, **meters}

    async def subscribe(
        self, session: AsyncSession, *, principal: Principal, plan_id: str
    ) -> Tenant:
        """Move the caller's tenant to a plan (owner/admin); a too-small downgrade is a 409."""
        await self.require_manager(session, principal=principal)
        plan = self.catalogue.get(plan_id)
        if plan is None:
            raise UnknownPlanError(plan_id, [p.id for p in self.catalogue.plans])
        tenant = await self.tenant(session, tenant_id=principal.tenant_id)
        if tenant.plan == plan.id:
            return tenant
        # With billing on, a paid plan starts and ends only through Stripe.
        paid_plans = await self.billing.paid_plans() if self.billing else frozenset()
        if plan.id in paid_plans or tenant.plan in paid_plans:
            raise BillingRequired(plan.id, current=tenant.plan)
        if self.catalogue.rank(plan.id) < self.catalogue.rank(tenant.plan):
            await self._check_fits(session, tenant=tenant, plan=plan)
        await self._change_plan(session, tenant=tenant, plan=plan)
        return tenant

    async def apply_subscription_change(
        self, session: AsyncSession, *, event: SubscriptionChanged
    ) -> None:
        """Put the tenant on the plan its Stripe subscription pays for, at once and whatever it
        uses: nothing is deleted, and creating beyond a smaller plan's limits is refused until
        the tenant is back under them. A change older than one applied before is ignored."""
        if not await repository.advance_billing_sequence(
            session, tenant_id=event.tenant_id, sequence=event.sequence
        ):
            logger.info(
                "subscription_change_skipped", tenant_id=str(event.tenant_id), plan=event.plan
            )
            return
        tenant = await self.tenant(session, tenant_id=event.tenant_id)
        plan = self.plan_named(event.plan)
        if tenant.plan != plan.id:
            await self._change_plan(session, tenant=tenant, plan=plan)

    async def _change_plan(self, session: AsyncSession, *, tenant: Tenant, plan: Plan) -> None:
        await repository.set_plan(session, tenant_id=tenant.id, plan=plan.id)
        await session.refresh(tenant)
        summary = self.summary(tenant)
        await self.outbox.add(
            session,
            PlanChanged(
                tenant_id=tenant.id,
                plan=plan.id,
                limits=summary["limits"],
                features=summary["features"],
            ),
        )
        logger.info("plan_changed", tenant_id=str(tenant.id), plan=plan.id)

    async def _check_fits(self, session: AsyncSession, *, tenant: Tenant, plan: Plan) -> None:
        limits = plan.with_overrides(tenant.limits)
        now = datetime.now(UTC)
        exceeded: list[dict[str, object]] = []
        # Agents live in the agents service: asked, not copied, so the count is never stale.
        agents = await self.agent_counts.count(tenant.id) if self.agent_counts else None
        if agents is not None and agents > int(limits["agents"]):
            exceeded.append({"limit": "agents", "used": agents, "allowed": limits["agents"]})
        for metric, limit_name in METRIC_LIMITS.items():
            used = await repository.usage(
                session, tenant_id=tenant.id, metric=metric, period=period_of(metric, now).label
            )
            if used > int(limits[limit_name]):
                exceeded.append({"limit": limit_name, "used": used, "allowed": limits[limit_name]})
        if exceeded:
            raise DowngradeRefused(plan.id, exceeded)

    # -- members and invites --------------------------------------------------------------

    async def role_of(self, session: AsyncSession, *, principal: Principal) -> str:
        """The caller's role in their tenant: the membership's, else the token's."""
        membership = await repository.get_membership(session, user_id=principal.user_id)
        if membership is not None and membership.tenant_id == principal.tenant_id:
            return membership.role
        return principal.role

    async def require_manager(self, session: AsyncSession, *, principal: Principal) -> None:
        """403 unless the caller is the tenant's owner or an admin."""
        if await self.role_of(session, principal=principal) not in MANAGERS:
            raise RoleRequired(*MANAGERS)

    async def members(
        self, session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, cursor: str | None
    ) -> tuple[list[Membership], str | None]:
        """A page of the tenant's members and the cursor of the next page."""
        after: uuid.UUID | None = None
        if cursor:
            try:
                after = uuid.UUID(cursor)
            except ValueError:
                after = None
        rows = await repository.list_members(
            session, tenant_id=tenant_id, limit=limit + 1, after=after
        )
        next_cursor = str(rows[limit - 1].user_id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def create_invite(
        self, session: AsyncSession, *, principal: Principal, role: str
    ) -> tuple[Invite, str]:
        """A single-use invite into the caller's tenant (owner/admin); returns it and its code."""
        await self.require_manager(session, principal=principal)
        await self.tenant(session, tenant_id=principal.tenant_id)
        code = secrets.token_urlsafe(18)
        now = datetime.now(UTC)
        invite = Invite(
            id=new_id(),
            tenant_id=principal.tenant_id,
            code_hash=hash_code(code),
            role=role,
            created_by=principal.user_id,
            created_at=now,
            expires_at=now + self.invite_ttl,
        )
        await repository.add_invite(session, invite)
        return invite, code

    async def join_or_create(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        email: str,
        tenant_name: str | None,
        invite_code: str | None,
        join_tenant_id: uuid.UUID | None = None,
    ) -> tuple[Tenant, Membership]:
        """A new user's tenant: joined by invite or as a member of `join_tenant_id`, or created
        with them as owner (idempotent)."""
        existing = await repository.get_membership(session, user_id=user_id)
        if existing is not None:
            return await self.tenant(session, tenant_id=existing.tenant_id), existing
        now = datetime.now(UTC)
        if invite_code:
            invite = await repository.get_invite_by_hash(session, code_hash=hash_code(invite_code))
            if invite is None:
                raise InviteNotFound()
            if invite.used_at is not None:
                raise InviteUsed()
            if _as_utc(invite.expires_at) <= now:
                raise InviteExpiredError()
            if not await repository.claim_invite(
                session, invite_id=invite.id, user_id=user_id, now=now
            ):
                raise InviteUsed()
            tenant = await self.tenant(session, tenant_id=invite.tenant_id)
            role = invite.role
        elif join_tenant_id is not None:
            tenant = await self.tenant(session, tenant_id=join_tenant_id)
            role = ROLE_MEMBER
        else:
            tenant = Tenant(
                id=new_id(),
                name=tenant_name or f"{email.split('@', 1)[0][:80]}'s workspace",
                plan=self.catalogue.default_plan,
                limits={},
                created_at=now,
            )
            await repository.add_tenant(session, tenant)
            role = ROLE_OWNER
        membership = Membership(
            user_id=user_id, tenant_id=tenant.id, email=email, role=role, joined_at=now
        )
        await repository.add_membership(session, membership)
        logger.info("tenant_joined", tenant_id=str(tenant.id), user_id=str(user_id), role=role)
        return tenant, membership

    async def undo_join(self, session: AsyncSession, *, user_id: uuid.UUID) -> None:
        """Undo `join_or_create` for a user whose account was never made (auth lost a race for
        the email): the membership goes, a tenant made for them goes too, an invite they used
        becomes usable again. Nothing happens for a user who has no membership."""
        membership = await repository.get_membership(session, user_id=user_id)
        if membership is None:
            return
        await repository.remove_membership(session, user_id=user_id)
        came_by_invite = await repository.release_invite(session, used_by=user_id)
        if (
            not came_by_invite
            and membership.role == ROLE_OWNER
            and not await repository.has_members(session, tenant_id=membership.tenant_id)
        ):
            await repository.remove_tenant(session, tenant_id=membership.tenant_id)
        logger.info("tenant_join_undone", tenant_id=str(membership.tenant_id), user_id=str(user_id))

    # -- metering -------------------------------------------------------------------------

    async def reserve(
        self,
        session: AsyncSession,
        *,
        tenant_id: uuid.UUID,
        metric: str,
        amount: int,
        key: str,
    ) -> dict[str, int | bool]:
        """Grant quota atomically and once per key, or raise 429 naming the limit.

        Messages are counted here; tokens are only checked (they are counted when the reply's
        `chat.message_completed` arrives, with the real figure).
        """
        # The plan and overrides as a plain row: an entity load costs more than the metering.
        found = await repository.plan_and_overrides(session, tenant_id=tenant_id)
        if found is None:
            raise TenantNotFound()
        plan_id, overrides = found
        limit_name = METRIC_LIMITS[metric]
        limit = int(self.plan_named(plan_id).with_overrides(overrides)[limit_name])
        now = datetime.now(UTC)
        period = period_of(metric, now)
        counted = metric == "messages"
        first_time = await repository.claim_reservation_key(
            session,
            tenant_id=tenant_id,
            key=key,
            metric=metric,
            period=period.label,
            amount=amount if counted else 0,
            now=now,
        )
        used: int | None = None
        if first_time:
            if counted:
                used = await repository.increment_within(
                    session,
                    tenant_id=tenant_id,
                    metric=metric,
                    period=period.label,
                    amount=amount,
                    limit=limit,
                )
                granted = used is not None
            else:
                used = await repository.usage(
                    session, tenant_id=tenant_id, metric=metric, period=period.label
                )
                granted = used + amount <= limit
            if not granted:
                # The key goes too (not left to a rollback: a batch carries on with its other
                # reservations), so a retry after an upgrade may pass.
                await repository.release_reservation_key(session, tenant_id=tenant_id, key=key)
                used = await repository.usage(
                    session, tenant_id=tenant_id, metric=metric, period=period.label
                )
                raise QuotaExceeded(
                    limit_name=limit_name,
                    limit=limit,
                    used=used,
                    plan=plan_id,
                    upgrade_to=self.catalogue.upgrade_after(plan_id),
                    retry_after=max(int((period.resets_at - now).total_seconds()), 1),
                )
        if used is None:
            used = await repository.usage(
                session, tenant_id=tenant_id, metric=metric, period=period.label
            )
        return {"allowed": True, "used": used, "limit": limit, "remaining": max(limit - used, 0)}

    async def reserve_many(
        self, session: AsyncSession, *, reservations: list[ReserveRequest]
    ) -> list[dict[str, Any]]:
        """Several reservations in one transaction, each granted or refused on its own (a
        refusal writes nothing); one outcome per reservation, in order."""
        outcomes: list[dict[str, Any]] = []
        for asked in reservations:
            try:
                granted = await self.reserve(
                    session,
                    tenant_id=asked.tenant_id,
                    metric=asked.metric,
                    amount=asked.amount,
                    key=asked.key,
                )
            except ProblemError as refusal:
                outcomes.append(
                    {
                        "status": refusal.status,
                        "problem": refusal.to_dict(),
                        "headers": refusal.headers,
                    }
                )
            else:
                outcomes.append({"status": 200, "reservation": granted})
        return outcomes

    async def record_usage(self, session: AsyncSession, *, records: list[RecordUsage]) -> int:
        """Count work already done that no event reports (OpenAI-compatible completions' tokens,
        from the agents service): once per key, never refused; how many records counted."""
        now = datetime.now(UTC)
        recorded = 0
        for record in records:
            if record.amount <= 0:
                continue
            if await repository.plan_and_overrides(session, tenant_id=record.tenant_id) is None:
                logger.warning("usage_for_unknown_tenant", tenant_id=str(record.tenant_id))
                continue
            period = period_of(record.metric, now)
            if await repository.claim_reservation_key(
                session,
                tenant_id=record.tenant_id,
                key=record.key,
                metric=record.metric,
                period=period.label,
                amount=record.amount,
                now=now,
            ):
                await repository.add_usage(
                    session,
                    tenant_id=record.tenant_id,
                    metric=record.metric,
                    period=period.label,
                    amount=record.amount,
                )
                recorded += 1
        return recorded

    async def refund_reservation(
        self, session: AsyncSession, *, tenant_id: uuid.UUID, key: str, amount: int | None = None
    ) -> None:
        """Give back what a reservation counted (or `amount` of it), in the period it was
        counted in, never more than it counted: the key stays with what is left to give back."""
        reservation = await repository.get_reservation(session, tenant_id=tenant_id, key=key)
        if reservation is None or reservation.amount <= 0:
            return
        given_back = reservation.amount if amount is None else min(amount, reservation.amount)
        await repository.add_usage(
            session,
            tenant_id=tenant_id,
            metric=reservation.metric,
            period=reservation.period,
            amount=-given_back,
        )
        reservation.amount -= given_back
        await session.flush()

    async def record_message_completed(
        self, session: AsyncSession, *, event: MessageCompleted, occurred_at: datetime
    ) -> None:
        """Count a finished reply's tokens in the month it happened, and give its message back
        if it failed before its first token (the inbox makes both once)."""
        if event.refunded_reservation:
            await self.refund_reservation(
                session,
                tenant_id=event.tenant_id,
                key=event.refunded_reservation,
                amount=event.refunded_amount,
            )
        tokens = max(event.input_tokens, 0) + max(event.output_tokens, 0)
        if tokens == 0:
            return
        await repository.add_usage(
            session,
            tenant_id=event.tenant_id,
            metric="tokens",
            period=period_of("tokens", occurred_at).label,
            amount=tokens,
        )
