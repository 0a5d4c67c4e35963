"""Fixtures of the tenants tests: auth and tenants on loopback, and helpers to call them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kibitz.kit.http import INTERNAL_TOKEN_HEADER
from tests.fixtures.stack import Account, Stack, start_stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Auth and tenants on SQLite, shared by a module's tests."""
    data_dir = tmp_path_factory.mktemp("tenants")
    async with start_stack(["auth", "tenants"], data_dir=data_dir) as running:
        yield running


class Tenants:
    """Calls the tenants service as a user or as another kibitz service."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.base = stack.url("tenants")
        self.http = stack.http

    @property
    def service_headers(self) -> dict[str, str]:
        return {INTERNAL_TOKEN_HEADER: self.stack.running.platform.internal_token}

    async def get(self, path: str, account: Account | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**(account.headers if account else {}), **kwargs.pop("headers", {})}
        return await self.http.get(f"{self.base}{path}", headers=headers, **kwargs)

    async def post(
        self, path: str, account: Account | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(account.headers if account else {}), **kwargs.pop("headers", {})}
        return await self.http.post(f"{self.base}{path}", headers=headers, **kwargs)

    async def internal(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(
            method, f"{self.base}/tenants/internal{path}", headers=self.service_headers, **kwargs
        )

    async def reserve(
        self, tenant_id: str, *, key: str, metric: str = "messages", amount: int = 1
    ) -> httpx.Response:
        body = {"tenant_id": tenant_id, "metric": metric, "amount": amount, "key": key}
        return await self.internal("POST", "/usage/reserve", json=body)


@pytest.fixture
def tenants(stack: Stack) -> Tenants:
    """A client of the tenants service."""
    return Tenants(stack)
