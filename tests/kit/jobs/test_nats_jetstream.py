"""The JetStream queue beside the JetStream bus on one server."""

from __future__ import annotations

import uuid

import nats
import pytest

from kibitz.kit.events import EventEnvelope
from kibitz.kit.events.nats_jetstream import NatsJetStreamBus
from kibitz.kit.jobs import Job, create_job_queue
from kibitz.kit.jobs.nats_jetstream import NatsJetStreamJobQueue
from tests.kit.jobs.conftest import NATS_URL


@pytest.mark.nats
async def test_a_queue_and_a_bus_configured_with_the_same_prefix_work_side_by_side() -> None:
    # JetStream refuses a second stream over subjects the first captures; the bus takes
    # `<prefix>.>`, so the queue's subjects must lie outside it.
    prefix = f"t{uuid.uuid4().hex[:10]}"
    bus = NatsJetStreamBus(NATS_URL, prefix=prefix)
    queue = create_job_queue(f"{NATS_URL}?prefix={prefix}", namespace="chat")
    assert isinstance(queue, NatsJetStreamJobQueue)
    try:
        await bus.publish(EventEnvelope(name="tests.happened", payload={}))
        await queue.enqueue(Job(id="one", kind="chat.reply", payload={"n": 1}))
        assert await queue.depth("chat.reply") == 1
    finally:
        await queue.close()
        await bus.close()
        connection = await nats.connect(NATS_URL)
        for stream in (bus.stream, queue.stream):
            await connection.jetstream().delete_stream(stream)
        await connection.close()
