"""The brokers keep the event streams bounded: JetStream by age and size, Redis by length."""

from __future__ import annotations

import uuid
from typing import ClassVar

import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import StreamConfig

from kibitz.kit.events import EventEnvelope, Retention, create_bus
from kibitz.kit.events.bus import Event
from kibitz.kit.events.nats_jetstream import NatsJetStreamBus
from kibitz.kit.events.redis_streams import RedisStreamsBus
from kibitz.kit.settings import PlatformSettings

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"


class Noted(Event):
    name: ClassVar[str] = "tests.noted"
    number: int


def _envelope(number: int) -> EventEnvelope:
    return EventEnvelope.wrap(Noted(number=number))


def test_the_defaults_reach_far_beyond_redelivery_and_come_from_settings() -> None:
    assert Retention().max_age_seconds >= 24 * 3600
    settings = PlatformSettings(bus_max_age_hours=2, bus_max_bytes=5000, bus_max_events=70)
    assert settings.bus_retention() == Retention(
        max_age_seconds=7200, max_bytes=5000, max_events=70
    )


@pytest.mark.nats
async def test_the_jetstream_stream_has_age_and_size_limits_even_when_it_existed() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    retention = Retention(max_age_seconds=3600, max_bytes=2_000_000)
    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    stream = prefix.upper()
    # Made by an older kibitz: no limits at all.
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"]))
    bus = create_bus(NATS_URL, prefix=prefix, retention=retention)
    assert isinstance(bus, NatsJetStreamBus)
    try:
        await bus.start()
        await bus.publish(_envelope(1))
        config = (await js.stream_info(stream)).config
        assert (config.max_age, config.max_bytes) == (3600, 2_000_000)
    finally:
        await bus.close()
        await js.delete_stream(stream)
        await client.close()


@pytest.mark.redis
async def test_a_redis_stream_is_trimmed_to_about_its_length() -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    bus = create_bus(REDIS_URL, prefix=prefix, retention=Retention(max_events=50))
    assert isinstance(bus, RedisStreamsBus)
    redis = aioredis.from_url(REDIS_URL)
    key = bus.stream_of(Noted.name)
    try:
        for number in range(1000):
            await bus.publish(_envelope(number))
        length = await redis.xlen(key)
        # `MAXLEN ~` trims whole nodes (100 entries by default), never below the bound.
        assert 50 <= length <= 250, length
    finally:
        await redis.delete(key)
        await redis.aclose()
        await bus.close()
