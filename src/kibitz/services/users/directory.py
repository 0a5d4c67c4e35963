"""What users reads from other services: an account (auth), its tenant's plan (tenants) and
which agents are its own (agents)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog

from kibitz.kit.errors import ProblemError
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.services.users.errors import AgentsUnavailable, AuthUnavailable, ProfileNotFound

logger = structlog.get_logger("kibitz.users")

# 5 s: a profile read waits at most this long for another service.
_CALL_TIMEOUT_SECONDS = 5.0


class AuthAccounts:
    """Reads accounts from the auth service's internal route."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._client: ServiceClient | None = None

    async def account(self, user_id: uuid.UUID) -> dict[str, Any]:
        """The auth user (`email`, `full_name`, `tenant_id`, …); 404 or 503 problems otherwise."""
        if not self.platform.has_service("auth"):
            raise AuthUnavailable()
        self._client = self._client or self.platform.client("auth")
        try:
            response = await self._client.request(
                "GET", f"/auth/internal/users/{user_id}", timeout=_CALL_TIMEOUT_SECONDS
            )
        except ProblemError as exc:
            raise AuthUnavailable() from exc
        if response.status_code == 404:
            raise ProfileNotFound()
        if response.status_code != 200:
            logger.warning("auth_account_read_failed", status=response.status_code)
            raise AuthUnavailable()
        body: dict[str, Any] = response.json()
        return body

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()


class OwnAgents:
    """Which agent ids are the caller's own, asked of the agents service as the caller."""

    # The agents service's largest page; a plan allows at most 100 agents.
    _PAGE = 200

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._client: ServiceClient | None = None

    async def not_owned(self, agent_ids: set[uuid.UUID], *, access_token: str) -> set[uuid.UUID]:
        """Those of `agent_ids` that are not the caller's (unknown, or another user's or
        tenant's: the agents service lists only the caller's own). 503 when it cannot say."""
        if not agent_ids:
            return set()
        if not self.platform.has_service("agents"):
            raise AgentsUnavailable()
        self._client = self._client or self.platform.client("agents")
        missing = set(agent_ids)
        cursor: str | None = None
        while missing:
            params: dict[str, Any] = {"limit": self._PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            try:
                response = await self._client.request(
                    "GET",
                    "/agents/my",
                    params=params,
                    headers={"Authorization": f"Bearer {access_token}"},
                    timeout=_CALL_TIMEOUT_SECONDS,
                )
            except ProblemError as exc:
                raise AgentsUnavailable() from exc
            if response.status_code != 200:
                logger.warning("own_agents_read_failed", status=response.status_code)
                raise AgentsUnavailable()
            page: dict[str, Any] = response.json()
            missing -= {uuid.UUID(agent["id"]) for agent in page["items"]}
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        return missing

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()


class Subscriptions:
    """Tenants' plans, cached briefly and refreshed by `tenants.plan_changed`."""

    def __init__(self, platform: Platform, *, ttl_seconds: float) -> None:
        self.platform = platform
        self.ttl_seconds = ttl_seconds
        self._cache: dict[uuid.UUID, tuple[float, dict[str, Any]]] = {}
        self._client: ServiceClient | None = None

    async def of(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        """The tenant's `{tenant_id, tenant_name, plan, limits}`, or None if tenants cannot say."""
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if not self.platform.has_service("tenants"):
            return None
        self._client = self._client or self.platform.client("tenants")
        try:
            response = await self._client.request(
                "GET", f"/tenants/internal/tenants/{tenant_id}/plan", timeout=_CALL_TIMEOUT_SECONDS
            )
        except ProblemError:
            logger.warning("tenant_plan_unavailable", tenant_id=str(tenant_id))
            return cached[1] if cached else None
        if response.status_code != 200:
            logger.warning("tenant_plan_read_failed", status=response.status_code)
            return cached[1] if cached else None
        summary: dict[str, Any] = response.json()
        self._cache[tenant_id] = (time.monotonic() + self.ttl_seconds, summary)
        return summary

    def plan_changed(self, *, tenant_id: uuid.UUID, plan: str, limits: dict[str, Any]) -> None:
        """Apply a plan change to the cached entry (or drop it so the next read refetches)."""
        cached = self._cache.get(tenant_id)
        if cached is None:
            return
        summary = {**cached[1], "plan": plan, "limits": limits}
        self._cache[tenant_id] = (time.monotonic() + self.ttl_seconds, summary)

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()
