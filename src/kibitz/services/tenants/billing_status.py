"""Whether paid plans go through billing: tenants asks the billing service, the one place that
knows (it is on when its Stripe secrets are set), rather than keeping a setting of its own that
could disagree with it."""

from __future__ import annotations

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform

# 5 s: a plan change waits this long for the billing service before answering 503.
_CALL_TIMEOUT_SECONDS = 5.0


class BillingStatus:
    """Reads billing's internal config: which plans are sold through Stripe."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._client: ServiceClient | None = None

    async def paid_plans(self) -> frozenset[str]:
        """The plans only Stripe may start or end; empty when billing is off or not deployed.

        A deployment with billing that cannot be asked answers 503: a paid plan must never be
        handed out for free because billing was briefly down."""
        if not self.platform.has_service("billing"):
            return frozenset()
        self._client = self._client or self.platform.client("billing")
        response = await self._client.request(
            "GET", "/billing/internal/config", timeout=_CALL_TIMEOUT_SECONDS
        )
        if response.status_code != 200:
            raise ServiceUnavailable("Could not ask billing about plans; try again shortly.")
        config = response.json()
        return frozenset(config["paid_plans"]) if config.get("enabled") else frozenset()

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()
