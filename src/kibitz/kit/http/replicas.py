"""Replicas of one service: round-robin with a cool-down, and the one fail-over loop that both
`ServiceClient` and the gateway's proxy send through."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from kibitz.kit.http.transport import UpstreamConnectError, UpstreamProtocolError

Answer = TypeVar("Answer")

# 10 s: a replica that refused a connection is skipped this long before it is tried again.
DEFAULT_COOLDOWN_SECONDS = 10.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Replicas tried per request: a second one rides out a replica that just died; more would
# only multiply the wait when the whole service is down.
_TRIES = 2


class UpstreamPool:
    """Round-robin over replicas; a replica that failed is skipped for a cool-down."""

    def __init__(
        self, base_urls: Sequence[str], *, cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    ) -> None:
        # No URL: a service this deployment lacks; every call finds no replica (503).
        self.base_urls = [url.rstrip("/") for url in base_urls]
        self.cooldown_seconds = cooldown_seconds
        self._cycle = itertools.cycle(range(len(self.base_urls)))
        self._down_until: dict[str, float] = {}

    def candidates(self) -> list[str]:
        """Replicas to try, in order: the next healthy ones first, cooling-down ones last."""
        if not self.base_urls:
            return []
        start = next(self._cycle)
        ordered = self.base_urls[start:] + self.base_urls[:start]
        now = time.monotonic()
        healthy = [url for url in ordered if self._down_until.get(url, 0.0) <= now]
        cooling = [url for url in ordered if url not in healthy]
        return healthy + cooling

    def mark_failed(self, base_url: str) -> None:
        """Skip this replica for the cool-down."""
        self._down_until[base_url] = time.monotonic() + self.cooldown_seconds

    def mark_ok(self, base_url: str) -> None:
        """This replica answered."""
        self._down_until.pop(base_url, None)


class NoReplicaReachable(Exception):
    """No replica of the service could be connected to (nothing was sent)."""


async def first_reachable(
    pool: UpstreamPool,
    attempt: Callable[[str], Awaitable[Answer]],
    *,
    resend_after_reset: bool = False,
) -> Answer:
    """The attempt's answer from the first replica that takes it.

    A replica that could not be connected to was sent nothing, so the request goes to the next
    one. A connection reset before the answer is tried again elsewhere only when
    `resend_after_reset` (the request is safe to repeat and its body is not consumed).
    Raises NoReplicaReachable when every try failed to connect; the last UpstreamProtocolError
    when a resent request broke again; any other error at once.
    """
    last_error: Exception | None = None
    for base_url in pool.candidates()[:_TRIES]:
        try:
            answer = await attempt(base_url)
        except UpstreamConnectError as exc:  # refused, unreachable: try another
            pool.mark_failed(base_url)
            last_error = exc
            continue
        except UpstreamProtocolError as exc:
            if not resend_after_reset:
                raise
            resend_after_reset = False
            pool.mark_failed(base_url)
            last_error = exc
            continue
        pool.mark_ok(base_url)
        return answer
    if isinstance(last_error, UpstreamProtocolError):
        raise last_error
    raise NoReplicaReachable(str(last_error)) from last_error
