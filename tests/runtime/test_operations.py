"""Operator tasks: replaying dead letters through a real broker, and the doctor's checks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.events import EventEnvelope, Inbox, create_bus
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.operations import (
    dead_letter_tables,
    dependency_problems,
    replay_dead_letters,
    settings_problems,
)
from kibitz.services.users.models import dead_letter_table, inbox_table
from kibitz.services.users.module import SCHEMA
from tests.fixtures.processes import free_port
from tests.fixtures.stack import environment
from tests.fixtures.stripe_server import running_stripe

BROKERS = [
    pytest.param("redis://127.0.0.1:6379/0", marks=pytest.mark.redis),
    pytest.param("nats://127.0.0.1:4222", marks=pytest.mark.nats),
]


def _envelope(*, occurred_at: datetime) -> EventEnvelope:
    return EventEnvelope(
        id=uuid.uuid4(),
        name="auth.user_registered",
        version=1,
        occurred_at=occurred_at,
        payload={"note": "replay test"},
    )


@pytest.fixture
async def users_database(tmp_path: Path) -> AsyncIterator[Database]:
    """The users service's migrated SQLite database under tmp_path (where settings point)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    await SCHEMA.upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def _park(database: Database, envelope: EventEnvelope, *, parked_at: datetime) -> None:
    async with database.transaction() as session:
        await session.execute(
            dead_letter_table.insert().values(
                id=uuid.uuid4(),
                consumer_group="users",
                event_id=envelope.id,
                name=envelope.name,
                envelope=envelope.model_dump(mode="json"),
                error="RuntimeError: the auth service was away",
                attempts=5,
                parked_at=parked_at,
            )
        )


def test_the_services_that_consume_events_keep_dead_letters() -> None:
    assert set(dead_letter_tables()) >= {"users", "tenants"}


@pytest.mark.parametrize("broker", BROKERS)
async def test_a_replayed_dead_letter_reaches_the_group_that_parked_it_and_only_it(
    broker: str, users_database: Database, tmp_path: Path
) -> None:
    bus_url = f"{broker}?prefix=t{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    ready = _envelope(occurred_at=now - timedelta(minutes=10))
    just_parked = _envelope(occurred_at=now - timedelta(seconds=20))
    forgotten = _envelope(occurred_at=now - timedelta(days=7))
    await _park(users_database, ready, parked_at=now - timedelta(minutes=9))
    await _park(users_database, just_parked, parked_at=now - timedelta(seconds=10))
    await _park(users_database, forgotten, parked_at=now - timedelta(days=7))

    handled: dict[str, list[uuid.UUID]] = {"users": [], "tenants": []}

    def recording(group: str):  # type: ignore[no-untyped-def]
        async def handle(_: AsyncSession, envelope: EventEnvelope) -> None:
            handled[group].append(envelope.id)

        return handle

    # Another consumer that handled the event long ago: its inbox remembers the id.
    other_database = Database(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await SCHEMA.upgrade(other_database.url)
    other_inbox = Inbox(other_database, inbox_table, dead_letter_table)
    async with other_database.transaction() as session:
        await session.execute(
            inbox_table.insert().values(
                consumer_group="tenants",
                event_id=ready.id,
                name=ready.name,
                handled_at=now - timedelta(minutes=10),
            )
        )
    bus = create_bus(bus_url)
    await bus.start()
    try:
        await Inbox(users_database, inbox_table, dead_letter_table).subscribe(
            bus, [ready.name], group="users", handle=recording("users")
        )
        await other_inbox.subscribe(bus, [ready.name], group="tenants", handle=recording("tenants"))
        await asyncio.sleep(0.5)  # the consumer groups exist before anything is published

        settings = PlatformSettings(data_dir=tmp_path, bus_url=bus_url)
        [report] = await replay_dead_letters(settings, services=["users"])

        for _ in range(100):
            if handled["users"]:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # room for a wrong second delivery to show
    finally:
        await bus.close()
        await other_database.dispose()

    assert (report.replayed, report.too_recent, report.too_old) == (1, 1, 1)
    assert handled == {"users": [ready.id], "tenants": []}
    async with users_database.transaction() as session:
        left = await session.scalar(select(func.count()).select_from(dead_letter_table))
    assert left == 2


async def test_replaying_needs_a_broker_the_command_can_reach(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in-process"):
        await replay_dead_letters(PlatformSettings(data_dir=tmp_path), services=["users"])


def test_a_bad_setting_of_any_module_is_named() -> None:
    with environment({"KIBITZ_CHAT_HEARTBEAT_SECONDS": "-1"}):
        problems = settings_problems()
    assert problems == [
        "invalid setting KIBITZ_CHAT_HEARTBEAT_SECONDS: Input should be greater than 0"
    ]


async def test_an_all_in_one_setup_has_nothing_to_fix(tmp_path: Path) -> None:
    assert await dependency_problems(PlatformSettings(data_dir=tmp_path)) == []


@pytest.mark.redis
@pytest.mark.nats
async def test_reachable_brokers_and_redis_pass(tmp_path: Path) -> None:
    settings = PlatformSettings(
        data_dir=tmp_path,
        bus_url="nats://127.0.0.1:4222?prefix=doctor",
        redis_url="redis://127.0.0.1:6379/0",
    )
    assert await dependency_problems(settings) == []


async def test_each_unreachable_dependency_is_one_line_without_secrets(tmp_path: Path) -> None:
    closed = free_port()
    settings = PlatformSettings(
        data_dir=tmp_path,
        bus_url=f"nats://user:s3cret@127.0.0.1:{closed}",
        redis_url=f"redis://:s3cret@127.0.0.1:{closed}/0",
        internal_token=SecretStr("t" * 32),
    )
    env = {
        "KIBITZ_CHAT_URL": f"http://127.0.0.1:{closed}",
        "KIBITZ_TENANTS_DATABASE_URL": f"postgresql+asyncpg://kibitz:s3cret@127.0.0.1:{closed}/tenants",
    }
    with environment(env):
        problems = await dependency_problems(settings)
    assert len(problems) == 4, problems
    assert problems[0].startswith(
        f"tenants database: cannot reach the database server of 127.0.0.1:{closed}/tenants"
    )
    assert problems[1].startswith(f"event bus nats://127.0.0.1:{closed} does not answer")
    assert problems[2].startswith(f"Redis redis://127.0.0.1:{closed}/0 does not answer")
    assert problems[3].startswith(f"chat at http://127.0.0.1:{closed} does not answer")
    assert not any("s3cret" in line for line in problems)


async def test_half_of_billings_stripe_settings_is_named(tmp_path: Path) -> None:
    with environment({"KIBITZ_BILLING_STRIPE_SECRET_KEY": "sk_test_s3cret"}):
        problems = await dependency_problems(PlatformSettings(data_dir=tmp_path))
    assert problems == [
        "billing: KIBITZ_BILLING_STRIPE_WEBHOOK_SECRET is not set: billing stays off until "
        "both Stripe secrets are"
    ]


async def test_stripe_is_asked_whether_it_takes_billings_key(tmp_path: Path) -> None:
    async with running_stripe(api_key="sk_test_right") as stripe:
        env = {
            "KIBITZ_BILLING_STRIPE_WEBHOOK_SECRET": "whsec_test",
            "KIBITZ_BILLING_STRIPE_API_BASE": stripe.base_url,
            "KIBITZ_BILLING_PRICES": '{"premium": "price_premium"}',
        }
        with environment({**env, "KIBITZ_BILLING_STRIPE_SECRET_KEY": "sk_test_right"}):
            accepted = await dependency_problems(PlatformSettings(data_dir=tmp_path))
        with environment({**env, "KIBITZ_BILLING_STRIPE_SECRET_KEY": "sk_test_s3cret"}):
            refused = await dependency_problems(PlatformSettings(data_dir=tmp_path))
    assert accepted == []
    assert refused == [f"billing: Stripe at {stripe.base_url} refuses the secret key"]


async def test_an_unreachable_qdrant_is_one_line_without_its_key(tmp_path: Path) -> None:
    closed = free_port()
    env = {
        "KIBITZ_KNOWLEDGE_QDRANT_URL": f"http://127.0.0.1:{closed}",
        "KIBITZ_KNOWLEDGE_QDRANT_API_KEY": "s3cret",
    }
    with environment(env):
        problems = await dependency_problems(PlatformSettings(data_dir=tmp_path))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"knowledge's Qdrant http://127.0.0.1:{closed} does not answer")
    assert "s3cret" not in problems[0]
