"""Quota and metering of OpenAI-compatible completions, with the tenants service over HTTP.

A chat reply is metered by `chat.message_completed` through chat's outbox. The agents service
has no bus (all-in-one it runs in a process of its own without one), so a completion is counted
the way chat's quota check already talks to tenants: over its internal HTTP routes. Before the
work, a reservation counts a message of the daily quota and checks the month's tokens (429 when
either is spent); after it, the tokens are recorded, idempotently per completion id, with one
retry. Both go through `CallBatcher`s, as chat's reservations do: concurrent completions share
round trips (measured with bench/openai_compat.py at 16 concurrent streams); records linger
0.25 s to share theirs, since nobody waits for them. While the tenant has plenty left
(`kit.quota_hints`), a completion starts before its reservation answers and the month's tokens
are checked once per 10 s (the reservation still counts the message, and a refusal ends the
completion with an error). A completion whose
record fails twice goes unmetered (logged), where chat's outbox would have retried until it got
through: the price of not adding a bus to this process.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from kibitz.kit.batching import CallBatcher
from kibitz.kit.errors import ProblemError, ServiceUnavailable, TooManyRequests
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.kit.quota_hints import QuotaHints

logger = structlog.get_logger("kibitz.agents.openai_compat")

# 5 s: the quota check sits on the request's path; past this, 503.
_RESERVE_TIMEOUT_SECONDS = 5.0
_RECORD_TIMEOUT_SECONDS = 10.0
_RECORD_ATTEMPTS = 2
# The tenants service's limits per batch (reservations; records).
_RESERVATIONS_PER_CALL = 100
_RECORDS_PER_CALL = 100
# 0.25 s: records are off every request's path; at 16 concurrent streams one call then carries
# the records of a dozen completions instead of one or two (one write transaction in tenants).
_RECORD_LINGER_SECONDS = 0.25
# Fewer messages left than this (or a tenth of the limit) and every completion waits for its
# reservation.
_MESSAGES_PLENTY_MIN = 5
# Fewer tokens left than this (or a tenth of the limit) and every completion checks them: room
# for several long replies (the deployment's cap is 1024 by default) before the next check.
_TOKENS_PLENTY_MIN = 8192


class QuotaReached(TooManyRequests):
    """The tenant's daily messages or monthly tokens are spent (the tenants service's words)."""

    problem_type, title = "quota-exceeded", "Quota Exceeded"


class UsageMeter:
    """Reserves quota before a completion and records its tokens after it."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._client: ServiceClient | None = None
        self._reservations: CallBatcher[dict[str, Any], dict[str, Any]] = CallBatcher(
            self._send_reservations, max_batch=_RESERVATIONS_PER_CALL
        )
        self._records: CallBatcher[dict[str, Any], None] = CallBatcher(
            self._send_records, max_batch=_RECORDS_PER_CALL, linger_seconds=_RECORD_LINGER_SECONDS
        )
        self._hints = QuotaHints()
        # Records still on their way: kept referenced until done, awaited at shutdown.
        self._pending: set[asyncio.Task[None]] = set()

    def _tenants(self) -> ServiceClient | None:
        if not self._platform.has_service("tenants"):
            return None
        self._client = self._client or self._platform.client("tenants")
        return self._client

    def plenty_left(self, tenant_id: uuid.UUID) -> bool:
        """Whether the tenant's last reservations left plenty: the work may start before this
        one's reservation answers."""
        return self._tenants() is None or self._hints.plenty(tenant_id, "messages")

    async def reserve(self, tenant_id: uuid.UUID, *, key: str) -> None:
        """Count one message against the daily quota and check the month's tokens (429); the
        tokens only once per 10 s while plenty are left."""
        if self._tenants() is None:
            return
        metrics = ["messages"]
        if not self._hints.plenty(tenant_id, "tokens"):
            metrics.append("tokens")
        outcomes = await asyncio.gather(
            *(
                self._reservations.call(
                    {
                        "tenant_id": str(tenant_id),
                        "metric": metric,
                        "amount": 1,
                        "key": f"{key}:{metric}",
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
                raise _quota_reached(outcome)
        for outcome in outcomes:
            if outcome["status"] != 200:
                logger.warning("openai_quota_check_failed", status=outcome["status"])
                raise ServiceUnavailable("The quota check is unavailable; try again shortly.")
        for metric, outcome in zip(metrics, outcomes, strict=True):
            minimum = _MESSAGES_PLENTY_MIN if metric == "messages" else _TOKENS_PLENTY_MIN
            self._hints.learn(tenant_id, metric, outcome["reservation"], minimum=minimum)

    async def _send_reservations(self, reservations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tenants = self._tenants()
        assert tenants is not None
        try:
            response = await tenants.request(
                "POST",
                "/tenants/internal/usage/reserve-batch",
                json={"reservations": reservations},
                timeout=_RESERVE_TIMEOUT_SECONDS,
            )
        except ProblemError as unreachable:
            return [{"status": unreachable.status}] * len(reservations)
        if response.status_code != 200:
            return [{"status": response.status_code}] * len(reservations)
        outcomes: list[dict[str, Any]] = response.json()["outcomes"]
        return outcomes

    def record_later(self, tenant_id: uuid.UUID, *, key: str, tokens: int) -> None:
        """Record the completion's tokens in the background (the answer does not wait)."""
        if tokens <= 0 or self._tenants() is None:
            return
        record = {"tenant_id": str(tenant_id), "metric": "tokens", "amount": tokens, "key": key}
        task = asyncio.create_task(self._record(record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, record: dict[str, Any]) -> None:
        for _ in range(_RECORD_ATTEMPTS):
            try:
                await self._records.call(record)
                return
            except (ProblemError, RuntimeError):
                continue
        logger.warning(
            "openai_usage_unrecorded", tenant_id=record["tenant_id"], tokens=record["amount"]
        )

    async def _send_records(self, records: list[dict[str, Any]]) -> list[None]:
        tenants = self._tenants()
        assert tenants is not None
        response = await tenants.request(
            "POST",
            "/tenants/internal/usage/record",
            json={"records": records},
            timeout=_RECORD_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the tenants service answered {response.status_code}")
        return [None] * len(records)

    async def aclose(self) -> None:
        """Let records in flight finish, then close the client."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._reservations.close()
        await self._records.close()
        if self._client is not None:
            await self._client.aclose()


def _quota_reached(outcome: dict[str, Any]) -> QuotaReached:
    problem = outcome.get("problem") or {}
    headers = {name.lower(): value for name, value in (outcome.get("headers") or {}).items()}
    retry_after = headers.get("retry-after", "")
    return QuotaReached(
        str(problem.get("detail") or "Your plan's quota is used up."),
        retry_after=int(retry_after) if retry_after.isdigit() else 60,
        extra={key: problem[key] for key in ("limit", "plan", "upgrade_to") if key in problem},
    )
