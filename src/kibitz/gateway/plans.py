"""Each tenant's requests/min, read from the tenants service, cached, refreshed on plan changes."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog

from kibitz.contracts.events import PlanChanged
from kibitz.kit.events import EventEnvelope
from kibitz.kit.http import ServiceClient

logger = structlog.get_logger("kibitz.gateway.plans")

# 5 s: when the tenants service cannot answer, the default limit holds this long.
_FALLBACK_CACHE_SECONDS = 5.0
# 2 s: a plan lookup sits on a user's request path; better the default limit than a slow answer.
_LOOKUP_TIMEOUT_SECONDS = 2.0


class PlanLimits:
    """Requests per minute per tenant; without a tenants service, the one default for everyone."""

    def __init__(
        self,
        tenants: ServiceClient | None,
        *,
        default_requests_per_minute: int,
        cache_seconds: float,
    ) -> None:
        self._tenants = tenants
        self.default_requests_per_minute = default_requests_per_minute
        self._cache_seconds = cache_seconds
        self._cached: dict[uuid.UUID, tuple[float, int]] = {}
        # The plan each tenant was last seen on: metrics carry the plan, never the tenant id.
        self._plan_names: dict[uuid.UUID, str] = {}
        self._lookups: dict[uuid.UUID, asyncio.Task[int]] = {}
        # Bumped by every plan change, so a lookup that started before it cannot store the old plan.
        self._generation: dict[uuid.UUID, int] = {}

    async def requests_per_minute(self, tenant_id: uuid.UUID) -> int:
        """The tenant's current limit (one lookup at a time per tenant, then cached)."""
        cached = self._cached.get(tenant_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if self._tenants is None:
            return self.default_requests_per_minute
        lookup = self._lookups.get(tenant_id)
        if lookup is None:
            lookup = asyncio.create_task(self._look_up(self._tenants, tenant_id))
            self._lookups[tenant_id] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(tenant_id, None))
        return await asyncio.shield(lookup)

    async def _look_up(self, tenants: ServiceClient, tenant_id: uuid.UUID) -> int:
        generation = self._generation.get(tenant_id, 0)
        ttl = self._cache_seconds
        try:
            response = await tenants.request(
                "GET",
                f"/tenants/internal/tenants/{tenant_id}/plan",
                timeout=_LOOKUP_TIMEOUT_SECONDS,
            )
            response.raise_for_status()
            plan = response.json()
            limit = _requests_per_minute(plan)
            self._plan_names[tenant_id] = str(plan.get("plan") or "unknown")
        except Exception as exc:  # any failure (503, 404, bad JSON) falls back to the default
            logger.warning("plan_lookup_failed", tenant_id=str(tenant_id), error=type(exc).__name__)
            limit, ttl = self.default_requests_per_minute, _FALLBACK_CACHE_SECONDS
        if self._generation.get(tenant_id, 0) == generation:
            self._cached[tenant_id] = (time.monotonic() + ttl, limit)
        return self._cached.get(tenant_id, (0.0, limit))[1]

    def plan_name(self, tenant_id: uuid.UUID) -> str:
        """The plan the tenant was last seen on (`unknown` before its first lookup)."""
        return self._plan_names.get(tenant_id, "unknown")

    def apply(self, tenant_id: uuid.UUID, limits: dict[str, Any], plan: str | None = None) -> None:
        """Use a tenant's new limits from now on (from a plan change event)."""
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        if plan is not None:
            self._plan_names[tenant_id] = plan
        try:
            limit = _requests_per_minute({"limits": limits})
        except (KeyError, TypeError, ValueError):
            self._cached.pop(tenant_id, None)
            return
        self._cached[tenant_id] = (time.monotonic() + self._cache_seconds, limit)

    def forget(self, tenant_id: uuid.UUID) -> None:
        """Look the tenant's plan up again on its next request."""
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        self._cached.pop(tenant_id, None)

    async def on_plan_changed(self, envelope: EventEnvelope) -> None:
        """Bus handler for `tenants.plan_changed`."""
        event = PlanChanged.model_validate(envelope.payload)
        self.apply(event.tenant_id, event.limits, event.plan)
        logger.info("plan_changed", tenant_id=str(event.tenant_id), plan=event.plan)


def _requests_per_minute(plan: dict[str, Any]) -> int:
    value = int(plan["limits"]["requests_per_minute"])
    if value < 0:
        raise ValueError("negative limit")
    return value
