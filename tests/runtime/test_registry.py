from __future__ import annotations

import pytest
from fastapi import FastAPI

from kibitz.kit.platform import Module, Platform
from kibitz.runtime.registry import MODULE_PATHS, ModuleCycleError, available_modules, start_order


def test_every_available_module_is_named_after_its_registry_entry() -> None:
    for name, module in available_modules().items():
        assert module.name == name


def test_the_gateway_starts_after_every_service() -> None:
    assert list(MODULE_PATHS)[-1] == "gateway"


def test_an_unknown_module_is_refused() -> None:
    with pytest.raises(KeyError):
        available_modules(["nope"])


def _module(name: str, *depends_on: str) -> Module:
    def no_app(platform: Platform) -> FastAPI:
        raise NotImplementedError

    return Module(name=name, create_app=no_app, depends_on=depends_on)


def test_modules_start_after_the_modules_they_depend_on() -> None:
    modules = {
        "chat": _module("chat", "auth", "agents"),
        "agents": _module("agents", "auth"),
        "gateway": _module("gateway", "auth"),
        "auth": _module("auth"),
    }
    assert start_order(modules) == ["auth", "agents", "chat", "gateway"]


def test_the_registry_order_is_kept_where_dependencies_leave_a_choice() -> None:
    order = list(available_modules())
    assert order == list(MODULE_PATHS)
    for name, module in available_modules().items():
        for dependency in module.depends_on:
            assert order.index(dependency) < order.index(name)


def test_a_dependency_outside_the_selection_is_not_waited_for() -> None:
    assert list(available_modules(["chat"])) == ["chat"]


def test_a_dependency_cycle_is_refused_naming_the_cycle() -> None:
    modules = {
        "auth": _module("auth"),
        "a": _module("a", "auth", "b"),
        "b": _module("b", "a"),
    }
    with pytest.raises(ModuleCycleError, match="a -> b -> a"):
        start_order(modules)
