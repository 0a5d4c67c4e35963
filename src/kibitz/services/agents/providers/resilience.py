"""Retries before the first token, never after: a half-streamed reply cannot be replayed."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kibitz.services.agents.providers.base import ProviderError, StreamItem, StreamStart


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and exponential backoff with jitter between them (seconds)."""

    max_attempts: int = 3
    base_seconds: float = 0.25
    max_seconds: float = 4.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after the given failed attempt (1-based)."""
        backoff = min(self.max_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        jittered = backoff * (0.5 + random.random() / 2)
        if retry_after is not None:
            # The provider's hint wins, within our cap: a client is waiting.
            return min(self.max_seconds, max(retry_after, 0.0))
        return jittered


async def stream_with_retries(
    open_stream: Callable[[], AsyncIterator[StreamItem]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[ProviderError], None] | None = None,
) -> AsyncIterator[StreamItem]:
    """The stream of the first attempt that yields a token (or its end); later failures are
    marked as such. The first `StreamStart` is passed on at once; an attempt that fails after
    it but before any token is still retried (its own `StreamStart` is not repeated)."""
    attempt = 0
    started = False
    while True:
        attempt += 1
        stream = open_stream()
        try:
            first = await anext(stream)
            while isinstance(first, StreamStart):
                if not started:
                    started = True
                    yield first
                first = await anext(stream)
        except ProviderError as error:
            await stream.aclose()  # type: ignore[attr-defined]
            if not error.retryable or attempt >= policy.max_attempts:
                raise
            if on_retry is not None:
                on_retry(error)
            await asyncio.sleep(policy.delay(attempt, error.retry_after))
            continue
        except BaseException:
            await stream.aclose()  # type: ignore[attr-defined]
            raise
        break
    try:
        yield first
        async for item in stream:
            yield item
    except ProviderError as error:
        error.after_first_token = True
        raise
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
