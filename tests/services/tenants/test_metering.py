"""Metering under concurrency, on SQLite and on PostgreSQL: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import EventEnvelope
from kibitz.services.tenants import repository
from kibitz.services.tenants.events import GROUP, metering_handler
from kibitz.services.tenants.models import UsageReservation
from tests.conftest import DATABASES
from tests.fixtures.stack import Account, Stack, start_stack
from tests.services.tenants.conftest import Tenants


@pytest.fixture(scope="module", params=DATABASES)
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("metering")
    async with start_stack(
        ["auth", "tenants"], data_dir=data_dir, database=str(request.param)
    ) as running:
        yield running


def completed(account: Account, *, input_tokens: int, output_tokens: int) -> EventEnvelope:
    return EventEnvelope.wrap(
        MessageCompleted(
            message_id=uuid.uuid4(),
            chat_id=uuid.uuid4(),
            tenant_id=uuid.UUID(account.tenant_id),
            user_id=uuid.UUID(account.user["id"]),
            agent_id=uuid.uuid4(),
            status="completed",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
    )


async def tokens_used(tenants: Tenants, account: Account) -> int:
    body = (await tenants.get("/tenants/usage", account)).json()
    return int(body["tokens"]["used"])


async def test_fifty_concurrent_metered_events_are_counted_exactly(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    app = stack.running.apps["tenants"]
    handler = app.state.inbox.handler(GROUP, metering_handler(app.state.tenants_service))
    events = [completed(owner, input_tokens=i, output_tokens=2 * i) for i in range(1, 51)]
    # Every event twice, all at once: duplicates must be skipped, updates never lost.
    await asyncio.gather(*(handler(envelope) for envelope in events + events))
    assert await tokens_used(tenants, owner) == sum(3 * i for i in range(1, 51))


async def test_events_published_on_the_bus_are_metered_once_each(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    bus = stack.running.platform.bus
    events = [completed(owner, input_tokens=10, output_tokens=5) for _ in range(50)]
    await asyncio.gather(*(bus.publish(envelope) for envelope in events))
    await asyncio.gather(*(bus.publish(envelope) for envelope in events[:10]))
    expected = 50 * 15
    for _ in range(200):
        if await tokens_used(tenants, owner) >= expected:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert await tokens_used(tenants, owner) == expected


async def test_fifty_concurrent_reservations_are_counted_exactly(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    answers = await asyncio.gather(
        *(tenants.reserve(owner.tenant_id, key=f"m-{i}") for i in range(50))
    )
    assert [answer.status_code for answer in answers] == [200] * 50
    usage = (await tenants.get("/tenants/usage", owner)).json()
    assert usage["messages"]["used"] == 50


async def test_with_one_message_left_ten_concurrent_reservations_let_exactly_one_through(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    assert (await tenants.reserve(owner.tenant_id, key="fill", amount=99)).status_code == 200
    answers = await asyncio.gather(
        *(tenants.reserve(owner.tenant_id, key=f"last-{i}") for i in range(10))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [429] * 9
    usage = (await tenants.get("/tenants/usage", owner)).json()
    assert usage["messages"]["used"] == 100


async def test_concurrent_retries_of_one_key_count_once(stack: Stack, tenants: Tenants) -> None:
    owner = await stack.register()
    answers = await asyncio.gather(
        *(tenants.reserve(owner.tenant_id, key="same") for _ in range(10))
    )
    assert {answer.status_code for answer in answers} == {200}
    usage = (await tenants.get("/tenants/usage", owner)).json()
    assert usage["messages"]["used"] == 1


async def test_reservation_keys_past_their_time_are_forgotten(
    stack: Stack, tenants: Tenants
) -> None:
    owner = await stack.register()
    for key in ("old-1", "old-2", "recent"):
        assert (await tenants.reserve(owner.tenant_id, key=key)).status_code == 200
    database = stack.running.apps["tenants"].state.database
    table = UsageReservation.__table__
    long_ago = datetime.now(UTC) - timedelta(days=3)
    async with database.transaction() as session:
        await session.execute(
            update(table)
            .where(table.c.tenant_id == uuid.UUID(owner.tenant_id), table.c.key.like("old-%"))
            .values(created_at=long_ago)
        )
    cutoff = datetime.now(UTC) - timedelta(days=2)
    assert await repository.forget_reservation_keys(database, created_before=cutoff) == 2
    async with database.transaction() as session:
        keys = await session.execute(
            select(table.c.key).where(table.c.tenant_id == uuid.UUID(owner.tenant_id))
        )
        assert keys.scalars().all() == ["recent"]
    # The usage they counted stays counted.
    usage = (await tenants.get("/tenants/usage", owner)).json()
    assert usage["messages"]["used"] == 3


async def test_replies_of_one_reservation_give_back_their_own_message_and_never_more(
    stack: Stack, tenants: Tenants
) -> None:
    """A turn of three agents reserves three messages under one key; each reply that gives its
    message back gives back one, once, and never more than the reservation counted."""
    owner = await stack.register()
    assert (await tenants.reserve(owner.tenant_id, key="turn", amount=3)).status_code == 200
    app = stack.running.apps["tenants"]
    handler = app.state.inbox.handler(GROUP, metering_handler(app.state.tenants_service))

    def refund(amount: int | None) -> EventEnvelope:
        return EventEnvelope.wrap(
            MessageCompleted(
                message_id=uuid.uuid4(),
                chat_id=uuid.uuid4(),
                tenant_id=uuid.UUID(owner.tenant_id),
                user_id=uuid.UUID(owner.user["id"]),
                status="stopped",
                refunded_reservation="turn",
                refunded_amount=amount,
            )
        )

    async def used() -> int:
        return int((await tenants.get("/tenants/usage", owner)).json()["messages"]["used"])

    one = refund(1)
    await handler(one)
    await handler(one)  # the same event again: handled once
    assert await used() == 2
    await handler(refund(1))
    assert await used() == 1
    await handler(refund(None))  # all that is left
    await handler(refund(1))  # nothing left to give back
    assert await used() == 0
