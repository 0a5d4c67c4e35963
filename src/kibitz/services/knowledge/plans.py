"""What knowledge reads from a tenant's plan: the `knowledge` feature and its limits. Plans come
from `kit.plans`; a limit the plan does not set falls back to knowledge's defaults."""

from __future__ import annotations

from kibitz.kit.plans import PlanReader, TenantPlan
from kibitz.kit.platform import Platform
from kibitz.services.knowledge.config import DEFAULT_LIMITS

FEATURE = "knowledge"


def knowledge_limit(plan: TenantPlan, name: str) -> int:
    """A knowledge limit (`knowledge_documents`, `knowledge_bytes`)."""
    return plan.limit(name, DEFAULT_LIMITS[name])


def plan_reader(platform: Platform, *, cache_seconds: float) -> PlanReader:
    """Plans from the tenants service. Without one (knowledge deployed alone) every tenant may use
    knowledge; a tenant it does not know yet has no features."""
    return PlanReader(
        platform,
        cache_seconds=cache_seconds,
        without_tenants=TenantPlan(plan="default", limits=dict(DEFAULT_LIMITS), features=[FEATURE]),
        not_yet_known=TenantPlan(plan="basic", limits={}, features=[]),
    )
