"""The tree's queries on a real database: a branch walked page by page visits each of its
messages once, the newest leaf skips messages that have replies and delegated answers, and the
plans stay index lookups (no sort of the chat's messages)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import update
from tests.services.chat.test_repository import chat_db, new_chat  # noqa: F401

from kibitz.kit.db.migrations import upgrade_to_head_async
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Message, utcnow
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.tree.repository import (
    TreeRepository,
    branch_up,
    children,
    newest_leaf,
)


async def test_paging_up_a_branch_visits_each_message_once_in_order(
    chat_db: ChatDatabase,  # noqa: F811
) -> None:
    chat_id = await new_chat(chat_db, 123)
    seen: list[str] = []
    async with chat_db.reading() as session:
        tree = TreeRepository(session)
        start = await tree.newest_leaf(chat_id)
        while start is not None:
            page = await tree.branch(chat_id, start=start, steps=50)
            seen += [message.content for message in page]
            start = page[-1].parent_id
    assert seen == [str(index) for index in reversed(range(123))]


async def test_the_newest_leaf_is_the_newest_message_nothing_follows(
    chat_db: ChatDatabase,  # noqa: F811
) -> None:
    chat_id = await new_chat(chat_db, 3)
    async with chat_db.reading() as session:
        line = await TreeRepository(session).branch(
            chat_id, start=await TreeRepository(session).newest_leaf(chat_id), steps=10
        )
    last, first = line[0], line[-1]
    now = utcnow()
    common = {"chat_id": chat_id, "tenant_id": last.tenant_id, "user_id": last.user_id}
    common |= {"status": "complete", "input_tokens": 0, "output_tokens": 0}
    common |= {"created_at": now, "updated_at": now}
    side, delegated = new_id(), new_id()
    async with chat_db.transaction() as session:
        session.add(Message(id=side, parent_id=first.id, sender="agent", content="side", **common))
        session.add(
            Message(id=delegated, parent_id=last.id, sender="agent", content="asked", **common)
        )
        await session.flush()
        await session.execute(update(Message).where(Message.id == delegated).values(delegated=True))
    async with chat_db.reading() as session:
        tree = TreeRepository(session)
        # The side reply is newest and has no reply: the default branch ends there.
        assert await tree.newest_leaf(chat_id) == side
        # The delegated answer is no step: the main line still ends at its last message.
        assert await tree.end_below(chat_id, line[1].id) == last.id
        children = await tree.children_of(chat_id, [first.id, None])
    by_parent: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for parent_id, message_id in children:
        by_parent.setdefault(parent_id, []).append(message_id)
    assert by_parent == {None: [first.id], first.id: [line[1].id, side]}


async def test_the_tree_queries_are_index_lookups(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    await upgrade_to_head_async(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    db = ChatDatabase(url)
    try:
        async with db.reading() as session:
            connection = await session.connection()
            chat_id = uuid.uuid4()
            for statement, whole_chat_allowed in (
                # The newest message first, stopping at the first without a reply.
                (newest_leaf(chat_id), True),
                (branch_up(chat_id, uuid.uuid4(), 50).select(), False),
                (children(chat_id, [uuid.uuid4(), uuid.uuid4()]), False),
                (children(chat_id, [uuid.uuid4(), None]), False),
            ):
                compiled = statement.compile(
                    dialect=connection.dialect, compile_kwargs={"literal_binds": True}
                )
                plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
                details = " ".join(str(row[-1]) for row in plan)
                assert "TEMP B-TREE" not in details, details
                assert "SCAN messages" not in details and "SCAN leaf" not in details, details
                # Not the chat's (chat_id, id) range to its end: every message of the chat.
                assert whole_chat_allowed or "ix_messages_chat_id_id" not in details, details
    finally:
        await db.dispose()
