"""Events: the bus interface and its backends, the outbox that sends after commit, the inbox
that handles each event once.

Modules: `bus` (interface, in-process bus, retries), `redis_streams` and `nats_jetstream`
(broker backends), `outbox`, `inbox`. The backends import `bus`, never this package's
`create_bus`, so nothing here imports in a cycle.
"""

from __future__ import annotations

from kibitz.kit.events.bus import (
    DeadLetterSink,
    Event,
    EventBus,
    EventEnvelope,
    EventHandler,
    InProcessBus,
    Retention,
    RetryPolicy,
    split_bus_url,
)
from kibitz.kit.events.inbox import Inbox, TransactionalHandler, define_inbox_tables
from kibitz.kit.events.outbox import Outbox, RelayStalledError, define_outbox_table
from kibitz.kit.subscription import Subscription

__all__ = [
    "DeadLetterSink",
    "Event",
    "EventBus",
    "EventEnvelope",
    "EventHandler",
    "InProcessBus",
    "Inbox",
    "Outbox",
    "RelayStalledError",
    "Retention",
    "RetryPolicy",
    "Subscription",
    "TransactionalHandler",
    "create_bus",
    "define_inbox_tables",
    "define_outbox_table",
]


def create_bus(
    url: str,
    *,
    prefix: str | None = None,
    retry: RetryPolicy | None = None,
    retention: Retention | None = None,
) -> EventBus:
    """The bus backend the URL names: `memory`, `redis://…` or `nats://…`.

    `prefix` (or `?prefix=` in the URL) namespaces streams/subjects, e.g. per test;
    `retention` bounds what the broker keeps (the defaults unless given).
    """
    retention = retention or Retention()
    if url in ("", "memory"):
        return InProcessBus(retry=retry)
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        from kibitz.kit.events.redis_streams import RedisStreamsBus

        clean, options = split_bus_url(url, "prefix")
        return RedisStreamsBus(
            clean, prefix=prefix or options.get("prefix"), retry=retry, retention=retention
        )
    if scheme in ("nats", "tls"):
        from kibitz.kit.events.nats_jetstream import NatsJetStreamBus

        clean, options = split_bus_url(url, "prefix")
        return NatsJetStreamBus(
            clean, prefix=prefix or options.get("prefix"), retry=retry, retention=retention
        )
    raise ValueError(f"unsupported event bus URL scheme: {scheme}")
