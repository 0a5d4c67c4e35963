from __future__ import annotations

import pytest

from kibitz.runtime.registry import MODULE_PATHS, available_modules


def test_every_available_module_is_named_after_its_registry_entry() -> None:
    for name, module in available_modules().items():
        assert module.name == name


def test_the_gateway_starts_after_every_service() -> None:
    assert list(MODULE_PATHS)[-1] == "gateway"


def test_an_unknown_module_is_refused() -> None:
    with pytest.raises(KeyError):
        available_modules(["nope"])
