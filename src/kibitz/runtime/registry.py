"""The explicit registry of runnable modules, in start order (dependencies first).

Like Loki's targets: `all` runs every module in one process; `serve NAME` runs one.
A module whose package is not in this build is simply absent; the gateway answers 503 for it.
"""

from __future__ import annotations

import importlib

from kibitz.kit.platform import Module

MODULE_PATHS: dict[str, str] = {
    "auth": "kibitz.services.auth.module",
    "tenants": "kibitz.services.tenants.module",
    "users": "kibitz.services.users.module",
    "agents": "kibitz.services.agents.module",
    "chat": "kibitz.services.chat.module",
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
    return {name: module for name, module in loaded.items() if module is not None}
