"""The one way kit connects to Redis (the event bus and the job queue on Redis Streams)."""

from __future__ import annotations

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def redis_client(url: str) -> aioredis.Redis:
    """A pooled asyncio client that connects lazily and survives a Redis restart.

    A pooled connection cut while idle (a Redis restart, a proxy) fails the next command sent on
    it, and `from_url` alone retries nothing: two retries with a short backoff save, e.g., a
    job's acknowledgement that would otherwise be lost and the job run again (measured by
    `tests/kit/jobs/test_queue.py::test_a_consumer_goes_on_after_the_broker_was_unreachable`).
    """
    return aioredis.from_url(
        url,
        # 2 s: an unreachable Redis fails fast; callers back off and try again.
        socket_connect_timeout=2.0,
        health_check_interval=10,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
