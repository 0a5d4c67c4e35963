"""The relay to a process apart: the parent's in-process bus reaches the consumers a child's code
registered, over loopback HTTP, with the child's own retries and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import httpx
import pytest

from kibitz.kit.app import create_service_app
from kibitz.kit.events import Event, EventEnvelope, InProcessBus, RetryPolicy
from kibitz.kit.events.relay import NotPublishable, RelayedBus
from kibitz.kit.http import INTERNAL_TOKEN_HEADER, ServiceClient
from kibitz.kit.platform import Platform
from kibitz.runtime.children import relay_events_to
from tests.fixtures.serving import serving

TOKEN = "internal-token-for-the-relay-test"


class Happened(Event):
    name: ClassVar[str] = "test.happened"
    n: int


@dataclass
class Child:
    """A process apart, as far as events go: its bus, its app's address, what it handled."""

    bus: RelayedBus
    url: str
    handled: list[int] = field(default_factory=list)
    heard: list[int] = field(default_factory=list)
    parked: list[tuple[str, int]] = field(default_factory=list)


@asynccontextmanager
async def child_and_parent() -> AsyncIterator[tuple[Child, InProcessBus, ServiceClient]]:
    bus = RelayedBus(retry=RetryPolicy(max_attempts=2, base_seconds=0.01))
    app = create_service_app(
        name="apart", platform=Platform(bus=bus, internal_token=TOKEN), routers=[]
    )
    parent = InProcessBus()
    async with serving(app) as url:
        child = Child(bus=bus, url=url)

        async def handle(envelope: EventEnvelope) -> None:
            n = int(envelope.payload["n"])
            if n < 0:
                raise ValueError("a negative n is never handled")
            child.handled.append(n)

        async def park(group: str, envelope: EventEnvelope, error: str, attempts: int) -> None:
            child.parked.append((group, int(envelope.payload["n"])))

        async def hear(envelope: EventEnvelope) -> None:
            child.heard.append(int(envelope.payload["n"]))

        await bus.subscribe([Happened.name], group="apart-group", handler=handle, dead_letter=park)
        await bus.listen([Happened.name], handler=hear)
        client = ServiceClient("apart", [url], internal_token=TOKEN)
        try:
            yield child, parent, client
        finally:
            await parent.close()
            await client.aclose()


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("never happened")


async def test_a_childs_group_and_listener_get_the_parents_events() -> None:
    async with child_and_parent() as (child, parent, client):
        # Published before the child's consumers were relayed: the group still gets it (the
        # bus logs it), a listener hears only what comes later.
        await parent.publish(EventEnvelope.wrap(Happened(n=1)))
        await relay_events_to(client, parent)
        await parent.publish(EventEnvelope.wrap(Happened(n=2)))
        await _until(lambda: child.handled == [1, 2] and child.heard == [2])


async def test_a_failing_handler_is_retried_and_parked_in_the_child() -> None:
    async with child_and_parent() as (child, parent, client):
        await relay_events_to(client, parent)
        await parent.publish(EventEnvelope.wrap(Happened(n=-1)))
        await parent.publish(EventEnvelope.wrap(Happened(n=3)))
        await _until(lambda: child.handled == [3])
        assert child.parked == [("apart-group", -1)]


async def test_only_kibitz_services_may_post_events() -> None:
    async with child_and_parent() as (child, _, _):
        envelope = EventEnvelope.wrap(Happened(n=4)).model_dump(mode="json")
        async with httpx.AsyncClient(base_url=child.url) as http:
            consumers = await http.get("/internal/events/consumers")
            stranger = await http.post("/internal/events/apart-group", json=envelope)
            unknown = await http.post(
                "/internal/events/nobody", json=envelope, headers={INTERNAL_TOKEN_HEADER: TOKEN}
            )
        assert consumers.status_code == 403 and stranger.status_code == 403
        assert unknown.status_code == 404
        assert child.handled == []


async def test_consumer_ids_are_the_same_in_a_restarted_child() -> None:
    async def registered() -> list[dict[str, object]]:
        bus = RelayedBus()

        async def nothing(envelope: EventEnvelope) -> None:
            return None

        await bus.subscribe(["a.b"], group="g", handler=nothing)
        await bus.subscribe(["a.c"], group="g", handler=nothing)
        await bus.listen(["a.b"], handler=nothing)
        return bus.consumers()

    first, again = await registered(), await registered()
    assert [c["id"] for c in first] == ["g", "g.2", "listen.a.b"]
    assert first == again


async def test_a_process_apart_publishes_nothing() -> None:
    with pytest.raises(NotPublishable):
        await RelayedBus().publish(EventEnvelope.wrap(Happened(n=5)))
