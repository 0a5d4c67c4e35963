"""Login throttling that slows the attacker, not the account's owner.

Failed logins are counted per (account, client address), per client address, and per account
over every address. The first few of each are free; after them every attempt waits a delay
that doubles with each further failure (1 s, 2 s, 4 s … up to a cap), so a guesser from one
address gets a handful of tries an hour while the owner, signing in from their own address,
is never held up. Only the per-account count over every address is a ceiling (far higher),
against a guesser spread over many addresses.

An attempt is counted before its password is checked, in one atomic step with the check (a
Lua script in Redis, a synchronous step in memory), so a burst of parallel attempts cannot
slip through between the check and the count; a correct password takes its count back.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Protocol

import structlog
from redis.asyncio import Redis

from kibitz.services.auth.errors import TooManyLoginAttempts

logger = structlog.get_logger("kibitz.auth")

# Counters with no failure for this long are dropped (memory only; Redis expires them).
_MEMORY_PRUNE_AT = 100_000


@dataclass(frozen=True)
class Gate:
    """`free` failures, then a wait after the latest that doubles with each further one."""

    scope: str
    free: int
    first_wait: float
    max_wait: float

    def wait_after(self, failures: int) -> float:
        """Seconds an attempt must wait after the latest of `failures` counted ones."""
        if failures < self.free:
            return 0.0
        return float(min(self.first_wait * 2 ** min(failures - self.free, 40), self.max_wait))


class CounterStore(Protocol):
    """Where the counts live: this process (all-in-one) or Redis (every auth replica)."""

    async def attempt(self, keys: list[tuple[str, Gate]], *, now: float, ttl: int) -> float:
        """0 and every key counted once; or the seconds still to wait, nothing counted."""

    async def take_back(self, *, forget: str, decrement: list[str]) -> None:
        """A correct password: drop `forget`, count one less on each of `decrement`."""


class MemoryCounters:
    """Counters in this process's memory (all-in-one: one auth process)."""

    def __init__(self) -> None:
        # key -> [count, latest attempt (epoch s), forgotten at (epoch s)]
        self._counts: dict[str, list[float]] = {}

    async def attempt(self, keys: list[tuple[str, Gate]], *, now: float, ttl: int) -> float:
        """See `CounterStore.attempt` (no await inside: atomic on the event loop)."""
        if len(self._counts) > _MEMORY_PRUNE_AT:
            self._counts = {k: v for k, v in self._counts.items() if v[2] > now}
        wait = 0.0
        for key, gate in keys:
            count, latest, until = self._counts.get(key, (0.0, 0.0, 0.0))
            if until > now:
                wait = max(wait, latest + gate.wait_after(int(count)) - now)
        if wait > 0:
            return wait
        for key, _ in keys:
            count, _latest, until = self._counts.get(key, (0.0, 0.0, 0.0))
            self._counts[key] = [(count if until > now else 0.0) + 1, now, now + ttl]
        return 0.0

    async def take_back(self, *, forget: str, decrement: list[str]) -> None:
        """See `CounterStore.take_back`."""
        self._counts.pop(forget, None)
        for key in decrement:
            entry = self._counts.get(key)
            if entry is not None and entry[0] > 0:
                entry[0] -= 1


# KEYS: the counters; ARGV: now, ttl, then free, first wait, max wait for each key.
_ATTEMPT = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local at = 3 + (i - 1) * 3
  local free, first, most = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local state = redis.call('HMGET', key, 'n', 'last')
  local n, last = tonumber(state[1]) or 0, tonumber(state[2]) or 0
  if n >= free then
    local left = last + math.min(first * 2 ^ math.min(n - free, 40), most) - now
    if left > wait then wait = left end
  end
end
if wait > 0 then return tostring(wait) end
for _, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
end
return '0'
"""

_TAKE_BACK = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  if (tonumber(redis.call('HGET', KEYS[i], 'n')) or 0) > 0 then
    redis.call('HINCRBY', KEYS[i], 'n', -1)
  end
end
return 0
"""


class RedisCounters:
    """Counters in a shared Redis, under `key_prefix` (every auth replica sees the same)."""

    def __init__(self, url: str, *, key_prefix: str) -> None:
        self._redis = Redis.from_url(url)
        self._prefix = key_prefix
        self._attempt = self._redis.register_script(_ATTEMPT)
        self._take_back = self._redis.register_script(_TAKE_BACK)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def attempt(self, keys: list[tuple[str, Gate]], *, now: float, ttl: int) -> float:
        """See `CounterStore.attempt`."""
        arguments: list[float | int] = [now, ttl]
        for _, gate in keys:
            arguments += [gate.free, gate.first_wait, gate.max_wait]
        answer = await self._attempt(keys=[self._key(key) for key, _ in keys], args=arguments)
        return float(answer)

    async def take_back(self, *, forget: str, decrement: list[str]) -> None:
        """See `CounterStore.take_back`."""
        await self._take_back(keys=[self._key(forget), *(self._key(k) for k in decrement)])

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class LoginThrottle:
    """The three gates every password login passes (see the module's docstring)."""

    def __init__(
        self,
        store: CounterStore,
        *,
        free_per_account_and_address: int,
        free_per_address: int,
        account_ceiling: int,
        first_delay_seconds: float,
        max_delay_seconds: float,
        window_seconds: int,
    ) -> None:
        self._store = store
        self._pair = Gate(
            "pair", free_per_account_and_address, first_delay_seconds, max_delay_seconds
        )
        self._address = Gate("ip", free_per_address, first_delay_seconds, max_delay_seconds)
        # The ceiling is a plain count per window: past it, the account waits out the window.
        self._account = Gate("account", account_ceiling, window_seconds, window_seconds)
        # Counters outlive the longest wait they impose.
        self._ttl = int(max(window_seconds, 2 * max_delay_seconds))

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed: the shared store (Redis) never holds email addresses.
        return hashlib.sha256(email.encode()).hexdigest()[:32]

    def _keys(self, *, email: str, ip: str) -> tuple[str, str, str]:
        account = self._account_key(email)
        return f"pair:{account}:{ip}", f"ip:{ip}", f"account:{account}"

    async def admit(self, *, email: str, ip: str) -> None:
        """Count this attempt, or 429 with how long to wait (the attempt is not counted)."""
        pair, address, account = self._keys(email=email, ip=ip)
        keys = [(pair, self._pair), (address, self._address), (account, self._account)]
        try:
            wait = await self._store.attempt(keys, now=time.time(), ttl=self._ttl)
        except Exception:
            # Fail open: a broken counter store must not lock every user out.
            logger.warning("login_throttle_unavailable", exc_info=True)
            return
        if wait > 0:
            raise TooManyLoginAttempts(retry_after=math.ceil(wait))

    async def succeeded(self, *, email: str, ip: str) -> None:
        """The password was right: this address's failures on the account are forgiven, and
        the attempt counts against neither the address nor the account."""
        pair, address, account = self._keys(email=email, ip=ip)
        try:
            await self._store.take_back(forget=pair, decrement=[address, account])
        except Exception:
            logger.warning("login_throttle_unavailable", exc_info=True)
