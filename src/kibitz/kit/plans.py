"""A tenant's plan as other services read it: from the tenants service's internal route, with a
short cache for hot paths, and the lowest plan of the catalogue that has a feature.

One reader for every service that gates on plans (agents, knowledge, chat); each passes what a
tenant's plan is when the tenants service is absent or does not know the tenant yet.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kibitz.kit.errors import Forbidden, ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform

# Entries kept before the cache starts over (tenants seen within `cache_seconds`).
_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class TenantPlan:
    """A tenant's plan id, limits and features."""

    plan: str
    limits: dict[str, Any]
    features: list[str] = field(default_factory=list)

    def has(self, feature: str) -> bool:
        """Whether the plan includes a feature (e.g. `knowledge`, `multi_agent`)."""
        return feature in self.features

    def limit(self, name: str, default: int = 0) -> int:
        """A numeric limit of the plan, or `default` when it does not set one."""
        return int(self.limits.get(name, default))


class FeatureNotInPlan(Forbidden):
    """The tenant's plan lacks a feature; names the lowest plan that has it."""

    problem_type, title = "feature-not-in-plan", "Feature Not In Plan"

    def __init__(self, *, feature: str, plan: str, upgrade_to: str | None) -> None:
        detail = f"The {plan} plan does not include {feature}" + (
            f"; the {upgrade_to} plan does." if upgrade_to else "."
        )
        super().__init__(detail, extra={"feature": feature, "plan": plan, "upgrade_to": upgrade_to})


class PlanReader:
    """Reads plans over `GET /tenants/internal/tenants/{id}/plan`; a short cache serves hot paths.

    `without_tenants` is every tenant's plan when no tenants service is deployed;
    `not_yet_known` is the plan of a tenant the tenants service does not know (yet: a
    registration still settling).
    """

    def __init__(
        self,
        platform: Platform,
        *,
        cache_seconds: float,
        without_tenants: TenantPlan,
        not_yet_known: TenantPlan,
    ) -> None:
        self.platform = platform
        self.cache_seconds = cache_seconds
        self.without_tenants = without_tenants
        self.not_yet_known = not_yet_known
        self._client: ServiceClient | None = None
        self._cache: dict[uuid.UUID, tuple[float, TenantPlan]] = {}

    def _tenants(self) -> ServiceClient:
        self._client = self._client or self.platform.client("tenants")
        return self._client

    async def current(self, tenant_id: uuid.UUID, *, fresh: bool = False) -> TenantPlan:
        """The tenant's plan, at most `cache_seconds` old unless `fresh` asks for a new read."""
        if not self.platform.has_service("tenants"):
            return self.without_tenants
        if not fresh:
            cached = self._cache.get(tenant_id)
            if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
        response = await self._tenants().request(
            "GET", f"/tenants/internal/tenants/{tenant_id}/plan", timeout=5.0
        )
        if response.status_code == 404:
            plan = self.not_yet_known
        elif response.status_code != 200:
            raise ServiceUnavailable("The tenant's plan cannot be read right now.")
        else:
            body = response.json()
            plan = TenantPlan(
                plan=str(body.get("plan", self.not_yet_known.plan)),
                limits=dict(body.get("limits") or {}),
                features=list(body.get("features") or []),
            )
        if len(self._cache) > _CACHE_ENTRIES:
            self._cache.clear()
        self._cache[tenant_id] = (time.monotonic(), plan)
        return plan

    async def require(
        self, tenant_id: uuid.UUID, feature: str, *, bearer_token: str | None
    ) -> TenantPlan:
        """The tenant's plan, or 403 `feature-not-in-plan` naming the lowest plan that has it."""
        plan = await self.current(tenant_id)
        if not plan.has(feature):
            upgrade = await self.lowest_plan_with_feature(feature, bearer_token)
            raise FeatureNotInPlan(feature=feature, plan=plan.plan, upgrade_to=upgrade)
        return plan

    async def lowest_plan_with_feature(self, feature: str, bearer_token: str | None) -> str | None:
        """The cheapest plan of the tenants' catalogue that has `feature` (None when unknown)."""
        if bearer_token is None or not self.platform.has_service("tenants"):
            return None
        try:
            response = await self._tenants().request(
                "GET",
                "/tenants/plans",
                headers={"Authorization": f"Bearer {bearer_token}"},
                timeout=5.0,
            )
            plans = response.json().get("items", []) if response.status_code == 200 else []
        except Exception:  # only a hint in an error message: never worth failing over
            return None
        return next(
            (str(plan["id"]) for plan in plans if feature in (plan.get("features") or [])), None
        )

    async def aclose(self) -> None:
        """Close the tenants client."""
        if self._client is not None:
            await self._client.aclose()
