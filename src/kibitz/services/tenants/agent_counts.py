"""How many agents a tenant has: the agents service owns them, tenants asks before a downgrade."""

from __future__ import annotations

import uuid

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform

# 5 s: a downgrade waits this long for the agents service before answering 503.
_CALL_TIMEOUT_SECONDS = 5.0


class AgentCounts:
    """Reads a tenant's agent count from the agents service's internal route."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._client: ServiceClient | None = None

    async def count(self, tenant_id: uuid.UUID) -> int | None:
        """The tenant's agent count, or None when this deployment runs no agents service."""
        if not self.platform.has_service("agents"):
            return None
        self._client = self._client or self.platform.client("agents")
        response = await self._client.request(
            "GET",
            f"/agents/internal/tenants/{tenant_id}/agent-count",
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise ServiceUnavailable("Could not count the tenant's agents; try again shortly.")
        return int(response.json()["agents"])

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()
