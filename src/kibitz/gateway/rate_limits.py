"""Request rate limits with the `limits` library: per tenant by plan, per client IP on auth routes.

Moving windows (exact: with a limit of N/min, exactly N of any burst pass). Counters live in
memory all-in-one and in Redis when `KIBITZ_REDIS_URL` is set, so gateway replicas share them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from kibitz.kit.errors import TooManyRequests

logger = structlog.get_logger("kibitz.gateway.rate_limits")

RATE_LIMIT_REJECTIONS = Counter(
    "kibitz_rate_limit_rejections_total",
    "Requests the gateway refused with 429",
    ["scope"],
)


@dataclass(frozen=True, slots=True)
class Allowance:
    """The outcome of one hit: allowed or not, and what the RateLimit-* headers say."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        """`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds)."""
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]

    def rejection(self, detail: str) -> TooManyRequests:
        """The 429 problem for a refused hit."""
        return TooManyRequests(
            detail,
            retry_after=self.reset_seconds,
            headers={key.decode(): value.decode() for key, value in self.headers()},
            extra={"limit": self.limit},
        )


# 1 s: how often the in-memory counters are swept of expired entries.
_SWEEP_INTERVAL_SECONDS = 1.0


class SweepingMemoryStorage(MemoryStorage):
    """`limits`' memory storage, sweeping expired entries at most once a second.

    The library schedules a sweep after every hit, and the sweep hops to a thread for every
    key: measured here, that was ~0.4 ms per request, most of the gateway's cost. Expired
    entries never count (each hit compares timestamps), so sweeping less often only keeps
    them in memory a little longer.
    """

    _next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - overrides the mangled name
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL_SECONDS
        await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


def storage_for(redis_url: str | None, *, key_prefix: str) -> Storage:
    """Redis storage when a URL is configured (shared by replicas), memory otherwise."""
    if not redis_url:
        return SweepingMemoryStorage()
    return RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=key_prefix)


class RateLimits:
    """Counts hits per key in a one-minute moving window."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def _item(self, per_minute: int) -> RateLimitItemPerMinute:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute, namespace="rl")
        return item

    async def hit(self, scope: str, key: str, *, per_minute: int) -> Allowance | None:
        """Count one request against `scope`/`key`; None when the counters cannot be reached.

        An unreachable Redis lets requests through (logged) rather than failing every request:
        the limits protect the service, they must not become its single point of failure.
        """
        item = self._item(per_minute)
        try:
            allowed = await self._limiter.hit(item, scope, key)
            stats = await self._limiter.get_window_stats(item, scope, key)
        except Exception as exc:
            logger.warning("rate_limit_storage_unavailable", scope=scope, error=type(exc).__name__)
            return None
        reset_seconds = max(1, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            RATE_LIMIT_REJECTIONS.labels(scope).inc()
        return Allowance(
            allowed=allowed,
            limit=per_minute,
            remaining=max(0, stats.remaining),
            reset_seconds=reset_seconds,
        )

    async def ping(self) -> None:
        """Readiness: the storage answers."""
        if not await self.storage.check():
            raise ConnectionError("rate limit storage unreachable")

    async def reset(self) -> None:
        """Forget every counter (tests and operators)."""
        await self.storage.reset()
