"""The same bus scenarios on every backend: in-process, Redis Streams and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import Column, MetaData, String, Table, Uuid, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.events import (
    Event,
    EventBus,
    EventEnvelope,
    Inbox,
    InProcessBus,
    Outbox,
    RetryPolicy,
    create_bus,
    define_inbox_tables,
    define_outbox_table,
)
from kibitz.kit.events.inbox import KEEP_HANDLED
from kibitz.kit.events.nats_jetstream import NatsJetStreamBus
from kibitz.kit.events.redis_streams import RedisStreamsBus
from kibitz.kit.tracing import configure_tracing, continued_span, shutdown_tracing
from tests.fixtures.tcp_proxy import TcpProxy

REDIS = ("127.0.0.1", 6379)
NATS = ("127.0.0.1", 4222)
BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("nats", marks=pytest.mark.nats),
]
FAST_RETRY = RetryPolicy(max_attempts=3, base_seconds=0.01)


class Pinged(Event):
    name: ClassVar[str] = "tests.pinged"
    number: int


class Ponged(Event):
    name: ClassVar[str] = "tests.ponged"
    number: int


async def wait_until(check: Callable[[], Awaitable[bool]], *, seconds: float = 20.0) -> None:
    """Poll `check` until it holds; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@dataclass
class BusFactory:
    """Builds buses of one backend that share a random per-test prefix (their own namespace)."""

    backend: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    buses: list[EventBus] = field(default_factory=list)
    _memory: InProcessBus | None = None

    def url(self, port: int | None = None) -> str:
        if self.backend == "redis":
            return f"redis://127.0.0.1:{port or REDIS[1]}/0"
        if self.backend == "nats":
            return f"nats://127.0.0.1:{port or NATS[1]}"
        return "memory"

    async def replica(self, *, port: int | None = None) -> EventBus:
        """A bus as one replica process would hold it (the in-process bus is shared)."""
        if self.backend == "memory":
            if self._memory is None:
                self._memory = InProcessBus(retry=FAST_RETRY)
                self.buses.append(self._memory)
            return self._memory
        bus: EventBus
        if self.backend == "redis":
            # Short re-claim/ack waits so the crashed-replica scenario runs in about a second.
            bus = RedisStreamsBus(
                self.url(port), prefix=self.prefix, retry=FAST_RETRY, claim_idle_seconds=1.0
            )
        else:
            bus = NatsJetStreamBus(
                self.url(port), prefix=self.prefix, retry=FAST_RETRY, ack_wait_seconds=2.0
            )
        await bus.start()
        self.buses.append(bus)
        return bus

    async def close(self) -> None:
        for bus in self.buses:
            await bus.close()


@pytest.fixture(params=BACKENDS)
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    factory = BusFactory(str(request.param))
    try:
        yield factory
    finally:
        await factory.close()


metadata = MetaData()
outbox_table = define_outbox_table(metadata)
inbox_table, dead_letter_table = define_inbox_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("note", String(50)),
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'events.db'}")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db
    await db.dispose()


async def count_effects(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(effects))).scalar_one())


def record_effect(note: str = "") -> Callable[[AsyncSession, EventEnvelope], Awaitable[None]]:
    async def handle(session: AsyncSession, envelope: EventEnvelope) -> None:
        await session.execute(effects.insert().values(event_id=envelope.id, note=note))

    return handle


async def test_a_published_event_reaches_the_subscribed_group(buses: BusFactory) -> None:
    bus = await buses.replica()
    seen: list[int] = []

    async def handler(envelope: EventEnvelope) -> None:
        seen.append(envelope.payload["number"])

    await bus.subscribe([Pinged.name], group="g", handler=handler)
    for number in range(5):
        await bus.publish(EventEnvelope.wrap(Pinged(number=number)))

    async def all_seen() -> bool:
        return sorted(seen) == list(range(5))

    await wait_until(all_seen)


async def test_a_group_that_subscribes_late_still_receives_earlier_events(
    buses: BusFactory,
) -> None:
    bus = await buses.replica()
    await bus.publish(EventEnvelope.wrap(Pinged(number=1)))
    seen: list[int] = []

    async def handler(envelope: EventEnvelope) -> None:
        seen.append(envelope.payload["number"])

    await bus.subscribe([Pinged.name], group="late", handler=handler)

    async def got_it() -> bool:
        return seen == [1]

    await wait_until(got_it)


async def test_each_event_goes_to_one_replica_of_a_group_and_to_every_group(
    buses: BusFactory,
) -> None:
    replica_a, replica_b, other = [await buses.replica() for _ in range(3)]
    handled: Counter[int] = Counter()
    by_replica: dict[str, int] = Counter()
    other_seen: Counter[int] = Counter()

    def handler_for(replica: str) -> Callable[[EventEnvelope], Awaitable[None]]:
        async def handler(envelope: EventEnvelope) -> None:
            await asyncio.sleep(0.005)
            handled[envelope.payload["number"]] += 1
            by_replica[replica] += 1

        return handler

    async def other_handler(envelope: EventEnvelope) -> None:
        other_seen[envelope.payload["number"]] += 1

    await replica_a.subscribe([Pinged.name], group="workers", handler=handler_for("a"))
    await replica_b.subscribe([Pinged.name], group="workers", handler=handler_for("b"))
    await other.subscribe([Pinged.name], group="audit", handler=other_handler)
    publisher = await buses.replica()
    for number in range(30):
        await publisher.publish(EventEnvelope.wrap(Pinged(number=number)))

    async def done() -> bool:
        return len(handled) == 30 and len(other_seen) == 30

    await wait_until(done)
    await asyncio.sleep(0.3)
    assert set(handled.values()) == {1}, "an event was handled by two replicas of a group"
    assert set(other_seen.values()) == {1}
    assert sum(by_replica.values()) == 30


async def test_a_subscription_receives_only_its_event_names(buses: BusFactory) -> None:
    bus = await buses.replica()
    pings: list[int] = []
    pongs: list[int] = []

    async def on_ping(envelope: EventEnvelope) -> None:
        pings.append(envelope.payload["number"])

    async def on_pong(envelope: EventEnvelope) -> None:
        pongs.append(envelope.payload["number"])

    await bus.subscribe([Pinged.name], group="svc", handler=on_ping)
    await bus.subscribe([Ponged.name], group="svc", handler=on_pong)
    await bus.publish(EventEnvelope.wrap(Pinged(number=1)))
    await bus.publish(EventEnvelope.wrap(Ponged(number=2)))

    async def both() -> bool:
        return pings == [1] and pongs == [2]

    await wait_until(both)


async def test_a_duplicate_delivery_is_skipped_by_the_inbox(
    buses: BusFactory, database: Database
) -> None:
    bus = await buses.replica()
    inbox = Inbox(database, inbox_table, dead_letter_table)
    await inbox.subscribe(bus, [Pinged.name], group="svc", handle=record_effect())
    envelope = EventEnvelope.wrap(Pinged(number=7))
    await bus.publish(envelope)
    await bus.publish(envelope)
    await bus.publish(EventEnvelope.wrap(Pinged(number=8)))

    async def two_handled() -> bool:
        return await inbox.handled_count("svc") == 2

    await wait_until(two_handled)
    await asyncio.sleep(0.3)
    assert await count_effects(database) == 2
    assert await inbox.handled_count("svc") == 2


async def test_events_handled_before_the_cutoff_are_forgotten(database: Database) -> None:
    inbox = Inbox(database, inbox_table, dead_letter_table)
    handler = inbox.handler("svc", record_effect())
    old, recent = EventEnvelope.wrap(Pinged(number=1)), EventEnvelope.wrap(Pinged(number=2))
    await handler(old)
    await handler(recent)
    async with database.transaction() as session:
        await session.execute(
            inbox_table.update()
            .where(inbox_table.c.event_id == old.id)
            .values(handled_at=datetime.now(UTC) - KEEP_HANDLED - timedelta(minutes=1))
        )
    assert await inbox.prune_handled(handled_before=datetime.now(UTC) - KEEP_HANDLED) == 1
    assert await inbox.handled_count("svc") == 1
    await handler(recent)  # still remembered: skipped
    assert await count_effects(database) == 2


async def test_a_poison_event_is_retried_then_parked_and_the_next_ones_flow(
    buses: BusFactory, database: Database
) -> None:
    bus = await buses.replica()
    inbox = Inbox(database, inbox_table, dead_letter_table)
    tries: Counter[int] = Counter()

    async def handle(session: AsyncSession, envelope: EventEnvelope) -> None:
        number = envelope.payload["number"]
        tries[number] += 1
        if number == 13:
            raise RuntimeError("cannot handle thirteen")
        await record_effect()(session, envelope)

    await inbox.subscribe(bus, [Pinged.name], group="svc", handle=handle)
    for number in (12, 13, 14):
        await bus.publish(EventEnvelope.wrap(Pinged(number=number)))

    async def parked_and_flowing() -> bool:
        return bool(await inbox.parked("svc")) and await count_effects(database) == 2

    await wait_until(parked_and_flowing)
    parked = await inbox.parked("svc")
    assert len(parked) == 1
    assert parked[0]["name"] == Pinged.name
    assert parked[0]["attempts"] == FAST_RETRY.max_attempts
    assert "cannot handle thirteen" in parked[0]["error"]
    assert tries[13] == FAST_RETRY.max_attempts
    assert await inbox.handled_count("svc") == 2


async def test_events_written_while_the_broker_is_down_are_all_delivered_once_it_is_back(
    buses: BusFactory, database: Database
) -> None:
    if buses.backend == "memory":
        pytest.skip("the in-process bus has no broker to lose")
    target = REDIS if buses.backend == "redis" else NATS
    proxy = TcpProxy(*target)
    await proxy.start()
    bus = await buses.replica(port=proxy.port)
    outbox = Outbox(outbox_table)
    inbox = Inbox(database, inbox_table, dead_letter_table)
    await inbox.subscribe(bus, [Pinged.name], group="svc", handle=record_effect())
    relay = asyncio.create_task(outbox.run_relay(database, bus))
    try:
        async with database.transaction() as session:
            await outbox.add(session, Pinged(number=0))

        async def first_handled() -> bool:
            return await count_effects(database) == 1

        await wait_until(first_handled)
        await proxy.stop()
        for number in range(1, 21):
            async with database.transaction() as session:
                await outbox.add(session, Pinged(number=number))
        await asyncio.sleep(1.0)
        assert await outbox.pending_count(database) > 0, "events must wait while the broker is down"
        await proxy.start()

        async def all_handled() -> bool:
            return await count_effects(database) == 21

        await wait_until(all_handled, seconds=60)
        await asyncio.sleep(0.5)
        assert await count_effects(database) == 21
        assert await inbox.handled_count("svc") == 21
        assert await outbox.pending_count(database) == 0
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await proxy.stop()


async def test_a_listener_on_every_replica_receives_every_new_event(buses: BusFactory) -> None:
    replicas = [await buses.replica() for _ in range(2)]
    publisher = await buses.replica()
    await publisher.publish(EventEnvelope.wrap(Ponged(number=-1)))  # before: never delivered
    received: list[list[int]] = [[], []]

    def handler_for(index: int) -> Callable[[EventEnvelope], Awaitable[None]]:
        async def handler(envelope: EventEnvelope) -> None:
            received[index].append(envelope.payload["number"])

        return handler

    for index, bus in enumerate(replicas):
        await bus.listen([Ponged.name], handler=handler_for(index))
    # Listeners start asynchronously: warm up until both hear something.
    for _ in range(200):
        if all(received):
            break
        await publisher.publish(EventEnvelope.wrap(Ponged(number=0)))
        await asyncio.sleep(0.05)
    for number in range(1, 6):
        await publisher.publish(EventEnvelope.wrap(Ponged(number=number)))

    async def both_heard_all() -> bool:
        return all([n for n in seen if n > 0] == [1, 2, 3, 4, 5] for seen in received)

    await wait_until(both_heard_all)
    assert all(-1 not in seen for seen in received)


async def test_an_event_a_crashed_replica_left_unacknowledged_goes_to_another(
    buses: BusFactory,
) -> None:
    crashing, healthy = [await buses.replica() for _ in range(2)]
    taken = asyncio.Event()
    handled: list[int] = []

    async def hang(envelope: EventEnvelope) -> None:
        taken.set()
        await asyncio.Event().wait()

    async def handle(envelope: EventEnvelope) -> None:
        handled.append(envelope.payload["number"])

    doomed = await crashing.subscribe([Pinged.name], group="svc", handler=hang)
    await (await buses.replica()).publish(EventEnvelope.wrap(Pinged(number=42)))
    await asyncio.wait_for(taken.wait(), 20)
    await doomed.cancel()  # the replica dies holding the event, unacknowledged
    await healthy.subscribe([Pinged.name], group="svc", handler=handle)

    async def recovered() -> bool:
        return handled == [42]

    await wait_until(recovered, seconds=30)


async def test_create_bus_picks_the_backend_from_the_url() -> None:
    assert isinstance(create_bus("memory"), InProcessBus)
    redis_bus = create_bus("redis://127.0.0.1:6379/0?prefix=abc")
    assert isinstance(redis_bus, RedisStreamsBus)
    assert redis_bus.stream_of("auth.user_registered") == "abc.auth.user_registered"
    nats_bus = create_bus("nats://127.0.0.1:4222", prefix="xyz")
    assert isinstance(nats_bus, NatsJetStreamBus)
    assert nats_bus.subject_of("tenants.plan_changed") == "xyz.tenants.plan_changed"
    await redis_bus.close()
    await nats_bus.close()
    with pytest.raises(ValueError, match="unsupported"):
        create_bus("kafka://broker:9092")


async def test_a_consumer_continues_the_trace_of_the_request_that_wrote_the_event(
    buses: BusFactory, database: Database
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("kibitz-test", exporter=exporter)
    try:
        bus = await buses.replica()

        async def handler(_: EventEnvelope) -> None:
            return None

        await bus.subscribe([Pinged.name], group="traced", handler=handler)
        outbox = Outbox(outbox_table)
        with continued_span("POST /demo", None, kind=SpanKind.SERVER) as request:
            assert request is not None
            async with database.transaction() as session:
                envelope = await outbox.add(session, Pinged(number=1))
        # The relay runs later, outside the request; the context travels in the outbox row.
        assert await outbox.relay_pending(database, bus) == 1

        async def consumed() -> bool:
            return any(s.kind == SpanKind.CONSUMER for s in exporter.get_finished_spans())

        await wait_until(consumed)
    finally:
        shutdown_tracing()
    spans = {span.kind: span for span in exporter.get_finished_spans()}
    producer, consumer = spans[SpanKind.PRODUCER], spans[SpanKind.CONSUMER]
    assert envelope.headers["traceparent"].split("-")[2] == f"{producer.context.span_id:016x}"
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == request.get_span_context().trace_id
    assert consumer.name == "process tests.pinged"
    assert (consumer.attributes or {})["messaging.consumer.group.name"] == "traced"


async def test_bus_lag_is_measured_from_when_the_event_happened(buses: BusFactory) -> None:
    from prometheus_client import REGISTRY

    bus = await buses.replica()
    handled = asyncio.Event()

    async def handler(_: EventEnvelope) -> None:
        handled.set()

    def lag_sum() -> float:
        labels = {"group": "lagging", "event": Pinged.name}
        return REGISTRY.get_sample_value("kibitz_event_lag_seconds_sum", labels) or 0.0

    before = lag_sum()
    await bus.subscribe([Pinged.name], group="lagging", handler=handler)
    # An event that happened 2 s ago (written to an outbox, then relayed late, say).
    late = EventEnvelope.wrap(Pinged(number=1)).model_copy(
        update={"occurred_at": datetime.now(UTC) - timedelta(seconds=2)}
    )
    await bus.publish(late)
    await asyncio.wait_for(handled.wait(), 10)
    assert 2.0 <= lag_sum() - before < 10.0
