"""The tenant's plan, read from the tenants service (or the Basic defaults when it is absent)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.services.agents.config import DEFAULT_PLANS, FALLBACK_PLAN, PLAN_ORDER


@dataclass(frozen=True)
class Plan:
    """A tenant's plan id, limits and features."""

    plan: str
    limits: dict[str, Any]
    features: list[str] = field(default_factory=list)

    @property
    def agent_limit(self) -> int:
        """How many agents the tenant may have."""
        return int(self.limits.get("agents", 0))

    def allows_model(self, *, provider: str, model: str, size_class: str) -> bool:
        """Whether the plan's `models` admit this model (name, provider:model, class, or *)."""
        allowed = {str(entry) for entry in self.limits.get("models", [])}
        candidates = {"*", model, f"{provider}:{model}", f"{provider}:*", size_class}
        return bool(allowed & candidates)


def default_plan(plan_id: str = FALLBACK_PLAN) -> Plan:
    """A plan from the default catalogue."""
    entry = DEFAULT_PLANS[plan_id]
    return Plan(plan=plan_id, limits=dict(entry["limits"]), features=list(entry["features"]))


def upgrade_that_allows(current: str, allows: Any) -> str | None:
    """The cheapest plan above `current` (default catalogue) for which `allows(plan)` holds."""
    if current not in PLAN_ORDER:
        return None
    for plan_id in PLAN_ORDER[PLAN_ORDER.index(current) + 1 :]:
        if allows(default_plan(plan_id)):
            return plan_id
    return None


class PlanReader:
    """Reads plans over the tenants service's internal route; a short cache serves the hot path."""

    def __init__(self, platform: Platform, *, cache_seconds: float) -> None:
        self.platform = platform
        self.cache_seconds = cache_seconds
        self._client: ServiceClient | None = None
        self._cache: dict[uuid.UUID, tuple[float, Plan]] = {}

    async def current(self, tenant_id: uuid.UUID, *, fresh: bool = True) -> Plan:
        """The tenant's plan; `fresh=False` accepts one read up to `cache_seconds` ago."""
        if not self.platform.has_service("tenants"):
            return default_plan()
        if not fresh:
            cached = self._cache.get(tenant_id)
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
        self._client = self._client or self.platform.client("tenants")
        response = await self._client.request(
            "GET", f"/tenants/internal/tenants/{tenant_id}/plan", timeout=5.0
        )
        if response.status_code == 404:
            # Not known yet (registration still settling): the plan every tenant starts on.
            plan = default_plan()
        elif response.status_code != 200:
            raise ServiceUnavailable("The tenant's plan cannot be read right now.")
        else:
            body = response.json()
            plan = Plan(
                plan=str(body.get("plan", FALLBACK_PLAN)),
                limits=dict(body.get("limits") or {}),
                features=list(body.get("features") or []),
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant_id] = (time.monotonic(), plan)
        return plan

    async def aclose(self) -> None:
        """Close the tenants client."""
        if self._client is not None:
            await self._client.aclose()
