"""What agents reads from a tenant's plan: the agent count and the models it admits, and the
cheapest plan of the default catalogue that would admit more. Plans come from `kit.plans`."""

from __future__ import annotations

from collections.abc import Callable

from kibitz.kit.plans import PlanReader, TenantPlan
from kibitz.kit.platform import Platform
from kibitz.services.agents.config import DEFAULT_PLANS, FALLBACK_PLAN, PLAN_ORDER


def agent_limit(plan: TenantPlan) -> int:
    """How many agents the tenant may have."""
    return plan.limit("agents")


def allows_model(plan: TenantPlan, *, provider: str, model: str, size_class: str) -> bool:
    """Whether the plan's `models` admit this model (name, provider:model, class, or *)."""
    allowed = {str(entry) for entry in plan.limits.get("models", [])}
    candidates = {"*", model, f"{provider}:{model}", f"{provider}:*", size_class}
    return bool(allowed & candidates)


def default_plan(plan_id: str = FALLBACK_PLAN) -> TenantPlan:
    """A plan from the default catalogue."""
    entry = DEFAULT_PLANS[plan_id]
    return TenantPlan(plan=plan_id, limits=dict(entry["limits"]), features=list(entry["features"]))


def upgrade_that_allows(current: str, allows: Callable[[TenantPlan], bool]) -> str | None:
    """The cheapest plan above `current` (default catalogue) for which `allows(plan)` holds."""
    if current not in PLAN_ORDER:
        return None
    for plan_id in PLAN_ORDER[PLAN_ORDER.index(current) + 1 :]:
        if allows(default_plan(plan_id)):
            return plan_id
    return None


def plan_reader(platform: Platform, *, cache_seconds: float) -> PlanReader:
    """Plans from the tenants service; Basic without one, or for a tenant not known yet."""
    return PlanReader(
        platform,
        cache_seconds=cache_seconds,
        without_tenants=default_plan(),
        not_yet_known=default_plan(),
    )
