"""Chat's queries on a migrated database: keyset paging, the index it uses, stale replies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from tests.fixtures.stack import postgres_databases

from kibitz.kit.db.migrations import upgrade_to_head_async
from kibitz.kit.events import Outbox
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Chat, Message, MessageStatus, ReplyJob, outbox_table
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE
from kibitz.services.chat.replies.orders import ReplyOrder, TurnStep
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.sending.repository import IdempotencyRepository, SendReads
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.tree.placement import NEWEST_LEAF, Placement
from kibitz.services.chat.turns.chain import TurnChain

TENANT, USER = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def chat_db(tmp_path: Path, database: str) -> AsyncIterator[ChatDatabase]:
    """A migrated chat database on SQLite or PostgreSQL."""
    if database == "postgres":
        async with postgres_databases(["chat"]) as urls:
            url = urls["chat"]
            await upgrade_to_head_async(
                database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
            )
            db = ChatDatabase(url)
            yield db
            await db.dispose()
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    await upgrade_to_head_async(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    db = ChatDatabase(url)
    yield db
    await db.dispose()


async def new_chat(
    db: ChatDatabase, messages: int, *, status: str = "complete", job: bool = True
) -> uuid.UUID:
    """A chat with `messages` alternating user/agent messages; an agent's reply in flight has
    its reply job (unless `job` is false: a later reply of a turn, waiting)."""
    now = datetime.now(UTC)
    chat_id = new_id()
    async with db.transaction() as session:
        session.add(
            Chat(
                id=chat_id,
                tenant_id=TENANT,
                user_id=USER,
                agent_id=(agent_id := uuid.uuid4()),
                agent_ids=[str(agent_id)],
                title="t",
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        parent = None
        for index in range(messages):
            message_id = new_id()
            session.add(
                Message(
                    id=message_id,
                    parent_id=parent,
                    chat_id=chat_id,
                    tenant_id=TENANT,
                    user_id=USER,
                    sender="agent" if index % 2 else "user",
                    content=str(index),
                    status=status,
                    input_tokens=0,
                    output_tokens=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            if index % 2 and job and status in ("pending", "streaming"):
                await session.flush()
                session.add(
                    ReplyJob(
                        message_id=message_id,
                        tenant_id=TENANT,
                        user_id=USER,
                        payload={},
                        holder="h",
                        lease_until=now + timedelta(seconds=5),
                        created_at=now,
                    )
                )
            parent = message_id
    return chat_id


async def test_paging_back_visits_every_message_once_in_order(chat_db: ChatDatabase) -> None:
    chat_id = await new_chat(chat_db, 123)
    seen: list[str] = []
    before = None
    while True:
        async with chat_db.transaction() as session:
            page = await ChatRepository(session).history_page(chat_id, limit=50, before=before)
        if not page:
            break
        seen += [message.content for message in page]
        before = page[-1].id
    assert seen == [str(index) for index in reversed(range(123))]


async def test_a_history_page_is_an_index_range_scan(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await upgrade_to_head_async(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    db = ChatDatabase(url)
    try:
        async with db.transaction() as session:
            plan = (
                await session.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT * FROM messages WHERE chat_id = :c AND id < :b "
                        "ORDER BY id DESC LIMIT 50"
                    ),
                    {"c": uuid.uuid4().hex, "b": uuid.uuid4().hex},
                )
            ).all()
        details = " ".join(str(row[-1]) for row in plan)
        assert "ix_messages_chat_id_id" in details
        assert "TEMP B-TREE" not in details  # no sort: the index gives the order
    finally:
        await db.dispose()


async def test_replies_nobody_advanced_for_long_are_failed_with_their_content(
    chat_db: ChatDatabase,
) -> None:
    stale_chat = await new_chat(chat_db, 2, status="streaming")
    async with chat_db.transaction() as session:
        failed = await ChatRepository(session).fail_stale(
            untouched_since=datetime.now(UTC) + timedelta(seconds=1), reason="interrupted"
        )
    assert failed == 1
    async with chat_db.transaction() as session:
        agent, _user = await ChatRepository(session).history_page(stale_chat, limit=5, before=None)
    assert (agent.status, agent.content, agent.error) == ("failed", "1", "interrupted")
    async with chat_db.transaction() as session:
        fresh = await ChatRepository(session).fail_stale(
            untouched_since=datetime.now(UTC) - timedelta(minutes=10), reason="interrupted"
        )
    assert fresh == 0


async def test_a_send_reads_owner_in_flight_replies_and_recent_messages_in_one_go(
    chat_db: ChatDatabase,
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    chat_id = await new_chat(chat_db, 7)
    await new_chat(chat_db, 2, status="streaming")  # one reply in flight, in another chat
    # A later reply of a turn waits without a job: the turn counts once.
    await new_chat(chat_db, 2, status="pending", job=False)
    empty_chat = await new_chat(chat_db, 0)
    owner = {"tenant_id": TENANT, "user_id": USER, "since": since}
    async with chat_db.read_connection() as connection:
        statement = select(Message.content, Message.id).where(Message.chat_id == chat_id)
        id_of = {content: id_ for content, id_ in (await connection.execute(statement)).all()}
        reads = SendReads(connection)
        view = await reads.existing_chat(chat_id, **owner, placement=NEWEST_LEAF, limit=4)
        empty = await reads.existing_chat(empty_chat, **owner, placement=NEWEST_LEAF, limit=4)
        earlier = await reads.existing_chat(
            chat_id, **owner, placement=Placement(parent_id=id_of["4"]), limit=4
        )
        root = await reads.existing_chat(chat_id, **owner, placement=Placement(root=True), limit=4)
        strangers = [
            await reads.existing_chat(
                chat_id,
                tenant_id=tenant,
                user_id=user,
                since=since,
                placement=NEWEST_LEAF,
                limit=4,
            )
            for tenant, user in ((uuid.uuid4(), USER), (TENANT, uuid.uuid4()))
        ]
        in_flight = await reads.in_flight(user_id=USER, since=since)
        # A job whose lease lapsed before `since` no longer counts.
        none_recent = await reads.in_flight(
            user_id=USER, since=datetime.now(UTC) + timedelta(minutes=1)
        )
    assert view is not None and empty is not None
    assert (view.title, view.in_flight) == ("t", 1)
    assert [message[1:] for message in view.history] == [
        ("user", "6", "complete"),
        ("agent", "5", "complete"),
        ("user", "4", "complete"),
        ("agent", "3", "complete"),
    ]
    # Only the parent's id is read: the new message's parent.
    assert [message.id for message in view.history] == [id_of["6"], None, None, None]
    assert view.parent_id == id_of["6"]
    assert (empty.history, empty.in_flight) == ([], 1)
    # From an earlier message: the branch up from it; a new root continues nothing.
    assert earlier is not None and root is not None
    assert [message.content for message in earlier.history] == ["4", "3", "2", "1"]
    assert earlier.parent_id == id_of["4"]
    assert (root.history, root.parent_id) == ([], None)
    assert strangers == [None, None]
    assert (in_flight, none_recent) == (1, 0)


async def test_idempotency_keys_past_their_window_are_forgotten(chat_db: ChatDatabase) -> None:
    async with chat_db.transaction() as session:
        await IdempotencyRepository(session).claim(user_id=USER, key="k", request_hash="h")
    for before, kept in (
        (datetime.now(UTC) - timedelta(minutes=1), True),
        (datetime.now(UTC) + timedelta(seconds=1), False),
    ):
        async with chat_db.transaction() as session:
            keys = IdempotencyRepository(session)
            await keys.remove_expired(before=before)
            assert (await keys.get(user_id=USER, key="k") is not None) is kept


async def test_a_turn_under_way_is_never_stale_however_long_it_runs(chat_db: ChatDatabase) -> None:
    # A panel of three: the first reply just ended after a long while; the other two waited
    # their turn since the send, untouched (the sweep's definition of stale).
    long_ago = datetime.now(UTC) - timedelta(minutes=20)
    chat_id = await new_chat(chat_db, 1)
    async with chat_db.transaction() as session:
        user_message = (await ChatRepository(session).history_page(chat_id, limit=1, before=None))[
            0
        ]
        first, *waiting = (new_id(), new_id(), new_id())
        parent = user_message.id
        for message_id in (first, *waiting):
            session.add(
                Message(
                    id=message_id,
                    parent_id=parent,
                    chat_id=chat_id,
                    tenant_id=TENANT,
                    user_id=USER,
                    sender="agent",
                    content="",
                    status="streaming" if message_id == first else "pending",
                    input_tokens=0,
                    output_tokens=0,
                    created_at=long_ago,
                    updated_at=long_ago,
                )
            )
            parent = message_id
    order = ReplyOrder(
        message_id=first,
        user_message_id=user_message.id,
        chat_id=chat_id,
        tenant_id=TENANT,
        user_id=USER,
        agent_id=uuid.uuid4(),
        context=[{"role": "user", "content": "0"}],
        request_id=None,
        created_at=long_ago,
        rest=tuple(TurnStep(message_id=m, agent_id=uuid.uuid4(), name="A") for m in waiting),
    )
    chain = TurnChain(lease_seconds=5, new_holder=lambda: "h")
    async with chat_db.transaction() as session:
        await ChatRepository(session).finish(
            first,
            content="done",
            status="complete",
            input_tokens=1,
            output_tokens=1,
            model=None,
            finish_reason="stop",
            error=None,
        )
        following = await chain.step(
            session, Outbox(outbox_table), order, status=MessageStatus.COMPLETE, content="done"
        )
    assert following.order is not None and following.order.message_id == waiting[0]
    async with chat_db.transaction() as session:
        failed = await ChatRepository(session).fail_stale(
            untouched_since=datetime.now(UTC) - timedelta(minutes=10), reason="interrupted"
        )
    assert failed == 0  # the next one started, the last one still waits: both touched
