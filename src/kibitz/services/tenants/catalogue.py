"""The plan catalogue: data (a JSON file an operator can replace), not code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

LIMIT_KEYS = ("requests_per_minute", "messages_per_day", "agents", "tokens_per_month")
KNOWN_FEATURES = frozenset({"knowledge", "multi_agent"})


class CatalogueError(ValueError):
    """The plan catalogue file is malformed."""


@dataclass(frozen=True)
class Plan:
    """One plan of the catalogue: its id, display name, limits and features."""

    id: str
    name: str
    limits: dict[str, Any]
    features: list[str] = field(default_factory=list)

    def with_overrides(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        """The plan's limits with a tenant's own overrides laid over them."""
        merged = dict(self.limits)
        for key, value in (overrides or {}).items():
            if key in merged:
                merged[key] = value
        return merged


@dataclass(frozen=True)
class Catalogue:
    """Every plan in order, cheapest first."""

    plans: tuple[Plan, ...]
    default_plan: str

    def get(self, plan_id: str) -> Plan | None:
        """The plan with this id, if the catalogue has it."""
        return next((plan for plan in self.plans if plan.id == plan_id), None)

    def rank(self, plan_id: str) -> int:
        """The plan's place in the order (higher is bigger); unknown plans rank lowest."""
        ids = [plan.id for plan in self.plans]
        return ids.index(plan_id) if plan_id in ids else -1

    def upgrade_after(self, plan_id: str) -> str | None:
        """The next bigger plan, if any."""
        rank = self.rank(plan_id)
        return self.plans[rank + 1].id if rank + 1 < len(self.plans) else None


def _parse(document: Any) -> Catalogue:
    if not isinstance(document, dict) or not isinstance(document.get("plans"), list):
        raise CatalogueError("the catalogue needs a `plans` list")
    plans = []
    for entry in document["plans"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise CatalogueError("every plan needs an `id`")
        limits = entry.get("limits")
        if not isinstance(limits, dict):
            raise CatalogueError(f"plan {entry['id']}: `limits` must be an object")
        for key in LIMIT_KEYS:
            if not isinstance(limits.get(key), int) or limits[key] < 0:
                raise CatalogueError(f"plan {entry['id']}: `{key}` must be a whole number >= 0")
        models = limits.get("models")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise CatalogueError(f"plan {entry['id']}: `models` must be a list of names")
        features = entry.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise CatalogueError(f"plan {entry['id']}: `features` must be a list of names")
        plans.append(
            Plan(
                id=entry["id"],
                name=str(entry.get("name") or entry["id"].title()),
                limits=dict(limits),
                features=list(features),
            )
        )
    if not plans:
        raise CatalogueError("the catalogue has no plans")
    ids = [plan.id for plan in plans]
    if len(set(ids)) != len(ids):
        raise CatalogueError("plan ids must be unique")
    default_plan = document.get("default_plan", ids[0])
    if default_plan not in ids:
        raise CatalogueError(f"default_plan {default_plan!r} is not in the catalogue")
    return Catalogue(plans=tuple(plans), default_plan=default_plan)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The operator's catalogue file when given, else the defaults shipped with the service."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("kibitz.services.tenants").joinpath("plans.json").read_text("utf-8")
    try:
        return _parse(json.loads(text))
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"the catalogue is not valid JSON: {exc}") from exc
