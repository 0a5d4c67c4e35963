"""The explicit registry of runnable modules; they start in `Module.depends_on` order.

Like Loki's targets: `all` runs every module in one process; `serve NAME` runs one.
A module whose package is not in this build is simply absent; the gateway answers 503 for it.
"""

from __future__ import annotations

import importlib

from kibitz.kit.platform import Module


class ModuleCycleError(ValueError):
    """Modules that depend on each other in a circle: none of them could start first."""


MODULE_PATHS: dict[str, str] = {
    "auth": "kibitz.services.auth.module",
    "tenants": "kibitz.services.tenants.module",
    "users": "kibitz.services.users.module",
    "knowledge": "kibitz.services.knowledge.module",
    "agents": "kibitz.services.agents.module",
    "chat": "kibitz.services.chat.module",
    "billing": "kibitz.services.billing.module",
    "gateway": "kibitz.gateway.module",
}
SERVICE_NAMES = [name for name in MODULE_PATHS if name != "gateway"]


def load_module(name: str) -> Module | None:
    """The named module, or None when this build does not contain it."""
    path = MODULE_PATHS[name]
    try:
        imported = importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name and path.startswith(exc.name):
            return None
        raise
    module: Module = imported.module
    return module


def available_modules(names: list[str] | None = None) -> dict[str, Module]:
    """Every module of this build (or of `names`), in start order."""
    wanted = names or list(MODULE_PATHS)
    unknown = [name for name in wanted if name not in MODULE_PATHS]
    if unknown:
        raise KeyError(f"unknown module(s): {', '.join(unknown)}")
    loaded = {name: load_module(name) for name in MODULE_PATHS if name in wanted}
    present = {name: module for name, module in loaded.items() if module is not None}
    return {name: present[name] for name in start_order(present)}


def start_order(modules: dict[str, Module]) -> list[str]:
    """The modules' names, each after those it `depends_on` (registry order breaks ties).

    A dependency that is not among `modules` runs elsewhere (another process) and is not
    waited for; modules that depend on each other in a circle raise ModuleCycleError."""
    waiting = {
        name: [dep for dep in module.depends_on if dep in modules and dep != name]
        for name, module in modules.items()
    }
    ordered: list[str] = []
    while waiting:
        ready = next((name for name, deps in waiting.items() if not deps), None)
        if ready is None:
            raise ModuleCycleError(f"modules depend on each other in a cycle: {_cycle_of(waiting)}")
        ordered.append(ready)
        del waiting[ready]
        for deps in waiting.values():
            if ready in deps:
                deps.remove(ready)
    return ordered


def _cycle_of(waiting: dict[str, list[str]]) -> str:
    """One cycle among modules that all still wait, as `a -> b -> a`."""
    path = [next(iter(waiting))]
    while path.count(path[-1]) < 2:
        path.append(waiting[path[-1]][0])
    start = path.index(path[-1])
    return " -> ".join(path[start:])
