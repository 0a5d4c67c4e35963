"""Request rate limits with the `limits` library: per tenant by plan, per client IP on auth routes.

Moving windows (exact: with a limit of N/min, exactly N of any burst pass). Counters live in
memory all-in-one and in Redis when `KIBITZ_REDIS_URL` is set, so gateway replicas share them.
Only `limits`' public storage interface is used (`MovingWindowSupport`).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

import structlog
from limits.aio.storage import MovingWindowSupport, RedisStorage, Storage
from prometheus_client import Counter

from kibitz.kit.errors import TooManyRequests

logger = structlog.get_logger("kibitz.gateway.rate_limits")

RATE_LIMIT_REJECTIONS = Counter(
    "kibitz_rate_limit_rejections_total",
    "Requests the gateway refused with 429, by limit and the tenant's plan (`none` per IP)",
    ["scope", "plan"],
)


# Which limit a 429 names (its problem's `limit_name`): the plan's requests/min for work, the
# per-user limit for reads, the per-address one on credential routes.
LimitName = Literal["plan", "reads", "address"]


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

    def rejection(self, detail: str, *, limit_name: LimitName) -> TooManyRequests:
        """The 429 problem for a refused hit; `limit_name` says which limit it hit."""
        return TooManyRequests(
            detail,
            retry_after=self.reset_seconds,
            headers={key.decode(): value.decode() for key, value in self.headers()},
            extra={"limit": self.limit, "limit_name": limit_name},
        )


# 1 s: how often the in-memory counters are swept of keys whose window has emptied.
_SWEEP_INTERVAL_SECONDS = 1.0
# 60 s: every limit here is per minute.
_WINDOW_SECONDS = 60


class MemoryMovingWindow(Storage, MovingWindowSupport):
    """An in-process moving-window storage, written against `limits`' storage interface.

    `limits`' own MemoryStorage schedules a sweep after every hit and hops to a thread for every
    key; measured here, that was ~0.4 ms per request, most of the gateway's cost. Here each key
    keeps its hit times in a deque trimmed as it is read, and emptied keys are swept inline at
    most once a second.
    """

    STORAGE_SCHEME = ["kibitz-memory"]

    def __init__(self) -> None:
        super().__init__()
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Errors of this storage (none of its own)."""
        return ValueError

    def _window(self, key: str, expiry: int, now: float) -> deque[float]:
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_INTERVAL_SECONDS
            for stale in [
                k for k, times in self._hits.items() if not times or times[-1] <= now - expiry
            ]:
                del self._hits[stale]
        times = self._hits.get(key)
        if times is None:
            times = self._hits[key] = deque()
        while times and times[0] <= now - expiry:
            times.popleft()
        return times

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count `amount` hits unless the window already holds `limit` minus fewer."""
        now = time.time()
        times = self._window(key, expiry, now)
        if len(times) + amount > limit:
            return False
        times.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(When the window's oldest hit happened, how many hits it holds)."""
        now = time.time()
        times = self._window(key, expiry, now)
        return (times[0] if times else now), len(times)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Not used by a moving window."""
        raise NotImplementedError

    async def get(self, key: str) -> int:
        """Hits counted under `key` (any age)."""
        return len(self._hits.get(key, ()))

    async def get_expiry(self, key: str) -> float:
        """When the newest hit under `key` leaves a one-minute window."""
        times = self._hits.get(key)
        return (times[-1] if times else time.time()) + _WINDOW_SECONDS

    async def check(self) -> bool:
        """Always reachable."""
        return True

    async def reset(self) -> int | None:
        """Forget every key; how many there were."""
        count = len(self._hits)
        self._hits.clear()
        return count

    async def clear(self, key: str) -> None:
        """Forget one key."""
        self._hits.pop(key, None)


def storage_for(redis_url: str | None, *, key_prefix: str) -> Storage:
    """Redis storage when a URL is configured (shared by replicas), memory otherwise."""
    if not redis_url:
        return MemoryMovingWindow()
    return RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=key_prefix)


class RateLimits:
    """Counts hits per key in a one-minute moving window.

    The counter's key names the scope and the key, never the limit: a tenant whose plan changes
    keeps the hits of the last minute, and they count against the new limit.
    """

    def __init__(self, storage: Storage) -> None:
        if not isinstance(storage, MovingWindowSupport):
            raise TypeError("rate limits need a storage with moving-window support")
        self.storage = storage
        self._window: MovingWindowSupport = storage

    async def hit(
        self, scope: str, key: str, *, per_minute: int, plan: str = "none"
    ) -> Allowance | None:
        """Count one request against `scope`/`key`; None when the counters cannot be reached.
        A refusal is counted in the metrics under the scope and the tenant's `plan`.

        An unreachable Redis lets requests through (logged) rather than failing every request:
        the limits protect the service, they must not become its single point of failure.
        """
        counter = f"rl/{scope}/{key}"
        try:
            allowed = await self._window.acquire_entry(counter, per_minute, _WINDOW_SECONDS)
            oldest, counted = await self._window.get_moving_window(
                counter, per_minute, _WINDOW_SECONDS
            )
        except Exception as exc:
            logger.warning("rate_limit_storage_unavailable", scope=scope, error=type(exc).__name__)
            return None
        reset_seconds = max(1, math.ceil(oldest + _WINDOW_SECONDS - time.time()))
        if not allowed:
            RATE_LIMIT_REJECTIONS.labels(scope, plan).inc()
        return Allowance(
            allowed=allowed,
            limit=per_minute,
            remaining=max(0, per_minute - counted),
            reset_seconds=reset_seconds,
        )

    async def ping(self) -> None:
        """Readiness: the storage answers."""
        if not await self.storage.check():
            raise ConnectionError("rate limit storage unreachable")

    async def reset(self) -> None:
        """Forget every counter (tests and operators)."""
        await self.storage.reset()
