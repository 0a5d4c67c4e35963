"""The search index on a migrated database: filled from the messages stored before it existed,
kept in step by the database itself on every insert, update and delete, finished messages only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import delete, insert, text, update
from tests.fixtures.stack import postgres_databases

from kibitz.kit.db.migrations import alembic_config
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.services.chat.models import Chat, Message
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE
from kibitz.services.chat.search.service import search_messages
from kibitz.services.chat.storage import ChatDatabase

TENANT, USER = uuid.uuid4(), uuid.uuid4()
BEFORE_SEARCH = "0003_chat_outbox_headers"


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


async def add_chat(db: ChatDatabase, *contents_and_statuses: tuple[str, str]) -> list[uuid.UUID]:
    """A chat of the caller with these messages; their ids."""
    now = datetime.now(UTC)
    chat_id = new_id()
    ids = [new_id() for _ in contents_and_statuses]
    async with db.transaction() as session:
        await session.execute(
            insert(Chat).values(
                id=chat_id,
                tenant_id=TENANT,
                user_id=USER,
                agent_id=uuid.uuid4(),
                title="t",
                created_at=now,
                updated_at=now,
            )
        )
        for message_id, (content, status) in zip(ids, contents_and_statuses, strict=True):
            await session.execute(
                insert(Message).values(
                    id=message_id,
                    chat_id=chat_id,
                    tenant_id=TENANT,
                    user_id=USER,
                    sender="agent",
                    content=content,
                    status=status,
                    input_tokens=0,
                    output_tokens=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    return ids


async def found(db: ChatDatabase, q: str) -> set[uuid.UUID]:
    principal = Principal(user_id=USER, tenant_id=TENANT, role="owner", token_id="t")
    async with db.reading() as session:
        page = await search_messages(session, principal=principal, q=q, limit=50, cursor=None)
    return {hit.message_id for hit in page.items}


async def indexed_rows(db: ChatDatabase) -> int:
    """How many messages the index holds an entry for."""
    async with db.reading() as session:
        if session.get_bind().dialect.name == "sqlite":
            statement = text("SELECT count(*) FROM message_search_docsize")
        else:
            statement = text("SELECT count(*) FROM messages WHERE search_vector IS NOT NULL")
        return int((await session.execute(statement)).scalar_one())


async def check_integrity(db: ChatDatabase) -> None:
    """FTS5's own check that the index matches its content, row for row (SQLite)."""
    async with db.transaction() as session:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(
                text(
                    "INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)"
                )
            )


async def test_messages_stored_before_the_index_are_found_after_the_migration(url: str) -> None:
    await asyncio.to_thread(migrate, url, BEFORE_SEARCH)
    db = ChatDatabase(url)
    try:
        old, _streaming = await add_chat(
            db, ("an old armadillo", "complete"), ("armadillo", "streaming")
        )
    finally:
        await db.dispose()
    # The search migration itself (a later one fails replies the code before reply jobs left in
    # flight, which then count as finished).
    await asyncio.to_thread(migrate, url, "chat_message_search")
    db = ChatDatabase(url)
    try:
        assert await found(db, "armadillo") == {old}
        assert await indexed_rows(db) == 1
        await check_integrity(db)
    finally:
        await db.dispose()


async def test_the_index_follows_every_write_and_holds_only_finished_messages(url: str) -> None:
    await asyncio.to_thread(migrate, url, "head")
    db = ChatDatabase(url)
    try:
        question, reply, stopped = await add_chat(
            db, ("ocelot question", "complete"), ("", "pending"), ("ocelot cut", "stopped")
        )
        assert await found(db, "ocelot") == {question, stopped}
        for status, content in (("streaming", "ocelot half"), ("streaming", "ocelot half way")):
            async with db.transaction() as session:
                await session.execute(
                    update(Message)
                    .where(Message.id == reply)
                    .values(content=content, status=status)
                )
            assert await found(db, "ocelot") == {question, stopped}
        async with db.transaction() as session:
            await session.execute(
                update(Message)
                .where(Message.id == reply)
                .values(content="ocelot answer whole", status="complete")
            )
        assert await found(db, "whole") == {reply}
        assert await indexed_rows(db) == 3
        await check_integrity(db)
        # A finished message changed again (an edit, a late failure) is re-indexed as it is now.
        async with db.transaction() as session:
            await session.execute(
                update(Message).where(Message.id == reply).values(content="jaguar instead")
            )
            await session.execute(
                update(Message).where(Message.id == stopped).values(status="failed")
            )
        assert await found(db, "whole") == set()
        assert await found(db, "jaguar") == {reply}
        assert await found(db, "cut") == {stopped}
        await check_integrity(db)
        async with db.transaction() as session:
            await session.execute(delete(Message).where(Message.id.in_([reply, question])))
        assert await found(db, "ocelot") == {stopped}
        assert await indexed_rows(db) == 1
        await check_integrity(db)
    finally:
        await db.dispose()


async def test_search_index_is_whole_at_head(tmp_path: Path) -> None:
    """Every trigger exists after the last migration (one that rebuilt `messages` on SQLite would
    have dropped them), and the index checks out against the table."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    await asyncio.to_thread(migrate, url, "head")
    db = ChatDatabase(url)
    try:
        async with db.reading() as session:
            rows = await session.execute(
                text(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'trigger' AND tbl_name = 'messages'"
                )
            )
            triggers = {row[0] for row in rows}
        assert triggers >= {
            "message_search_insert",
            "message_search_delete",
            "message_search_update",
        }
        await add_chat(db, ("tapir", "complete"))
        await check_integrity(db)
    finally:
        await db.dispose()
