"""The tenant's plan as the knowledge service needs it: the `knowledge` feature and its limits,
read from the tenants service (short cache), and the lowest plan that has the feature."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.services.knowledge.config import DEFAULT_LIMITS

FEATURE = "knowledge"


@dataclass(frozen=True)
class KnowledgePlan:
    """A tenant's plan id, limits and features."""

    plan: str
    limits: dict[str, Any]
    features: list[str] = field(default_factory=list)

    @property
    def has_knowledge(self) -> bool:
        """Whether the plan includes knowledge collections."""
        return FEATURE in self.features

    def limit(self, name: str) -> int:
        """A knowledge limit (`knowledge_documents`, `knowledge_bytes`)."""
        return int(self.limits.get(name, DEFAULT_LIMITS[name]))


# Without a tenants service (a deployment of knowledge alone) every tenant may use it.
_NO_TENANTS_PLAN = KnowledgePlan(plan="default", limits=dict(DEFAULT_LIMITS), features=[FEATURE])


class PlanReader:
    """Reads plans over the tenants service's internal route; a short cache serves searches."""

    def __init__(self, platform: Platform, *, cache_seconds: float) -> None:
        self.platform = platform
        self.cache_seconds = cache_seconds
        self._client: ServiceClient | None = None
        self._cache: dict[uuid.UUID, tuple[float, KnowledgePlan]] = {}

    def _tenants(self) -> ServiceClient:
        self._client = self._client or self.platform.client("tenants")
        return self._client

    async def current(self, tenant_id: uuid.UUID) -> KnowledgePlan:
        """The tenant's plan (at most `cache_seconds` old)."""
        if not self.platform.has_service("tenants"):
            return _NO_TENANTS_PLAN
        cached = self._cache.get(tenant_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        response = await self._tenants().request(
            "GET", f"/tenants/internal/tenants/{tenant_id}/plan", timeout=5.0
        )
        if response.status_code == 404:
            plan = KnowledgePlan(plan="basic", limits={}, features=[])
        elif response.status_code != 200:
            raise ServiceUnavailable("The tenant's plan cannot be read right now.")
        else:
            body = response.json()
            plan = KnowledgePlan(
                plan=str(body.get("plan", "basic")),
                limits=dict(body.get("limits") or {}),
                features=list(body.get("features") or []),
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant_id] = (time.monotonic(), plan)
        return plan

    async def lowest_plan_with_feature(self, bearer_token: str | None) -> str | None:
        """The cheapest plan of the catalogue that includes knowledge (None when unknown)."""
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
            (str(plan["id"]) for plan in plans if FEATURE in (plan.get("features") or [])), None
        )

    async def aclose(self) -> None:
        """Close the tenants client."""
        if self._client is not None:
            await self._client.aclose()
