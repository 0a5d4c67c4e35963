"""Jobs: work done once by whichever process claims it, under a lease that lapses if it dies.

Modules: `queue` (interface, metrics, the lease driver every backend shares), `memory`
(in-process, all-in-one), `redis_streams` and `nats_jetstream` (broker backends). The backends
import `queue`, never this package, so nothing here imports in a cycle.
"""

from __future__ import annotations

from kibitz.kit.events.bus import split_bus_url
from kibitz.kit.jobs.memory import InProcessJobQueue
from kibitz.kit.jobs.queue import (
    DEFAULT_MAX_ATTEMPTS,
    Job,
    JobHandler,
    JobQueue,
    Lease,
    read_depth_gauge,
)
from kibitz.kit.subscription import Subscription

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "InProcessJobQueue",
    "Job",
    "JobHandler",
    "JobQueue",
    "Lease",
    "Subscription",
    "create_job_queue",
    "read_depth_gauge",
]


def create_job_queue(url: str, *, namespace: str, lease_seconds: float = 5.0) -> JobQueue:
    """The queue backend the URL names: `memory`, `redis://…` or `nats://…`.

    `namespace` (e.g. the service) and `?prefix=` in the URL (e.g. per test run) keep queues
    apart on a shared broker.
    """
    if url in ("", "memory"):
        return InProcessJobQueue(lease_seconds=lease_seconds)
    scheme = url.split(":", 1)[0].lower()
    clean, options = split_bus_url(url, "prefix")
    if scheme in ("redis", "rediss"):
        from kibitz.kit.jobs.redis_streams import RedisStreamsJobQueue

        return RedisStreamsJobQueue(
            clean, namespace=namespace, prefix=options.get("prefix"), lease_seconds=lease_seconds
        )
    if scheme in ("nats", "tls"):
        from kibitz.kit.jobs.nats_jetstream import NatsJetStreamJobQueue

        return NatsJetStreamJobQueue(
            clean, namespace=namespace, prefix=options.get("prefix"), lease_seconds=lease_seconds
        )
    raise ValueError(f"unsupported job queue URL scheme: {scheme}")
