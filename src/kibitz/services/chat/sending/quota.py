"""The quota gate: a send counts one message against the tenant's daily quota (and checks its
monthly tokens) at the tenants service before its reply is stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from kibitz.kit.batching import CallBatcher
from kibitz.kit.errors import ProblemError, ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.quota_hints import QuotaHints
from kibitz.services.chat.sending.checks import problem_from_document

logger = structlog.get_logger("kibitz.chat")

# Fewer messages left than this (or a tenth of the limit) and every send waits for its
# reservation's answer before its reply is asked (`comfortable`).
_MESSAGES_PLENTY_MIN = 5
# The tenants service's limit per reservation batch.
_RESERVATIONS_PER_CALL = 100


def reservation_key(user_message_id: uuid.UUID | str) -> str:
    """The key a send's message reservation is made under (a refund names it too)."""
    return f"{user_message_id}:messages"


class QuotaGate:
    """Reservations at the tenants service; concurrent sends share round trips."""

    def __init__(self, tenants: ServiceClient | None) -> None:
        self._tenants = tenants
        # kit's per-tenant allowance (the developer API's too): while plenty is left, the
        # month's tokens are checked once per 10 s and replies are asked before the answer.
        self._hints = QuotaHints()
        self._batcher: CallBatcher[dict[str, Any], dict[str, Any]] = CallBatcher(
            self._send_batch, max_batch=_RESERVATIONS_PER_CALL
        )

    async def close(self) -> None:
        """Answer what is queued, then stop."""
        await self._batcher.close()

    async def reserve(
        self, tenant_id: uuid.UUID, *, user_message_id: uuid.UUID, messages: int = 1
    ) -> None:
        """Count the send's replies (a message each: several for a turn of several agents) and
        check the monthly tokens (429 naming the spent limit; 503 when the tenants service
        cannot answer: quotas fail closed)."""
        if self._tenants is None:
            # Never a free pass: without the tenants service no quota can be checked.
            raise ServiceUnavailable("The quota check is unavailable; try again shortly.")
        metrics = ["messages"]
        if not self._hints.plenty(tenant_id, "tokens"):
            metrics.append("tokens")
        key = reservation_key(user_message_id)
        outcomes = await asyncio.gather(
            *(
                self._batcher.call(
                    {
                        "tenant_id": str(tenant_id),
                        "metric": metric,
                        "amount": messages if metric == "messages" else 1,
                        "key": key if metric == "messages" else f"{user_message_id}:{metric}",
                    }
                )
                for metric in metrics
            )
        )
        for metric, outcome in zip(metrics, outcomes, strict=True):
            if outcome["status"] != 200:
                self._hints.forget(tenant_id, metric)
        for outcome in outcomes:
            if outcome["status"] == 429:
                raise problem_from_document(outcome["problem"], 429, outcome["headers"])
        for outcome in outcomes:
            if outcome["status"] != 200:
                logger.warning("chat_quota_check_failed", status=outcome["status"])
                raise ServiceUnavailable("The quota check is unavailable; try again shortly.")
        for metric, outcome in zip(metrics, outcomes, strict=True):
            minimum = _MESSAGES_PLENTY_MIN if metric == "messages" else 0
            self._hints.learn(tenant_id, metric, outcome["reservation"], minimum=minimum)

    def comfortable(self, tenant_id: uuid.UUID) -> bool:
        """Whether the tenant's last reservation (under 10 s ago) left plenty of messages: a
        refusal is then too unlikely to hold its reply back for the answer."""
        return self._hints.plenty(tenant_id, "messages")

    async def _send_batch(self, reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One round trip for the reservations of many sends (an outcome each; the call's own
        failure is every reservation's outcome)."""
        assert self._tenants is not None
        try:
            response = await self._tenants.request(
                "POST", "/tenants/internal/usage/reserve-batch", json={"reservations": reservations}
            )
        except ProblemError as unreachable:
            return [{"status": unreachable.status}] * len(reservations)
        if response.status_code != 200:
            return [{"status": response.status_code}] * len(reservations)
        outcomes: list[dict[str, Any]] = response.json()["outcomes"]
        return outcomes
