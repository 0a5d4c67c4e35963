"""The message tree's migration: every existing chat becomes one branch (each message's parent
the one before it, by created_at then id), on SQLite and PostgreSQL, and its history reads as
before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from tests.fixtures.stack import postgres_databases

from kibitz.kit.db.migrations import alembic_config
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Chat, Message
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.tree.history import branch_page

BEFORE_TREE = "chat_participants"


def migrate(url: str, revision: str) -> None:
    config = alembic_config(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    command.upgrade(config, revision)


@pytest.fixture
async def url(tmp_path: Path, database: str) -> AsyncIterator[str]:
    """An empty chat database on SQLite or PostgreSQL."""
    if database == "postgres":
        async with postgres_databases(["chat"]) as urls:
            yield urls["chat"]
        return
    yield f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


async def old_chat(connection: object, times: list[datetime]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A chat as the schema before the tree stored it: messages with these creation times, ids
    in the order written (time-ordered)."""
    chat_id, owner = new_id(), uuid.uuid4()
    ids = [new_id() for _ in times]
    is_sqlite = connection.dialect.name == "sqlite"  # type: ignore[attr-defined]

    def value(identifier: uuid.UUID) -> object:
        return identifier.hex if is_sqlite else identifier

    await connection.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO chats (id, tenant_id, user_id, agent_id, agent_ids, title, created_at,"
            " updated_at) VALUES (:id, :o, :o, :o, '[]', 'old', :at, :at)"
        ),
        {"id": value(chat_id), "o": value(owner), "at": times[0]},
    )
    for index, (message_id, at) in enumerate(zip(ids, times, strict=True)):
        await connection.execute(  # type: ignore[attr-defined]
            text(
                "INSERT INTO messages (id, chat_id, tenant_id, user_id, sender, content, status,"
                " input_tokens, output_tokens, created_at, updated_at) VALUES"
                " (:id, :c, :o, :o, :s, :content, 'complete', 0, 0, :at, :at)"
            ),
            {
                "id": value(message_id),
                "c": value(chat_id),
                "o": value(owner),
                "s": "user" if index % 2 == 0 else "agent",
                "content": f"message {index}",
                "at": at if not is_sqlite else at.replace(tzinfo=None),
            },
        )
    return chat_id, ids


async def test_existing_chats_become_a_single_branch(url: str) -> None:
    await asyncio.to_thread(migrate, url, BEFORE_TREE)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    db = ChatDatabase(url)
    try:
        async with db.engine.begin() as connection:
            # Two messages of one send share their time: the id orders them.
            plain, plain_ids = await old_chat(
                connection, [start, start, start + timedelta(seconds=1), start + timedelta(2)]
            )
            # Written out of time order (an import): created_at decides, not the id.
            shuffled, shuffled_ids = await old_chat(
                connection, [start + timedelta(seconds=9), start, start + timedelta(seconds=5)]
            )
            empty_chat, _ = await old_chat(connection, [start])
        await asyncio.to_thread(migrate, url, "head")
        async with db.reading() as session:
            rows = (await session.execute(select(Message.id, Message.parent_id))).all()
            parents = dict(rows)
            assert parents[plain_ids[0]] is None
            assert [parents[i] for i in plain_ids[1:]] == plain_ids[:-1]
            assert parents[shuffled_ids[1]] is None
            assert parents[shuffled_ids[2]] == shuffled_ids[1]
            assert parents[shuffled_ids[0]] == shuffled_ids[2]
            assert empty_chat  # a chat of one message: its root, nothing else
            chat = (await session.execute(select(Chat).where(Chat.id == plain))).scalar_one()
            page = await branch_page(session, chat=chat, limit=50, before=None, leaf=None)
        assert [m.id for m in page.messages] == plain_ids
        assert all(m.sibling_ids == [m.id] for m in page.messages)
        assert shuffled  # its branch ends at the message written first
    finally:
        await db.dispose()


async def test_the_migration_goes_down_and_up_again(url: str) -> None:
    await asyncio.to_thread(migrate, url, "head")
    config = alembic_config(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    await asyncio.to_thread(command.downgrade, config, BEFORE_TREE)
    await asyncio.to_thread(command.upgrade, config, "head")
