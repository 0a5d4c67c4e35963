"""Chat search on SQLite: query latency at 10k and 100k messages, and what the index costs writes.

    .venv/bin/python bench/chat_search.py [--sizes 10000,100000] [--queries 200]

For each size, a migrated chat database (SQLite, the kit's driver) is filled with messages of
~60 words drawn from a 5 000-word Zipf vocabulary, spread over 100 users (one chat each per 50
messages); the searching user owns 1/100 of them. It times `SqliteMessageSearch.search` (what
`GET /chat/search` runs, limit 20) for a rare word, a common word, a two-word query, a prefix and
a phrase: p50/p99 in ms. Then, on a fresh database, the write side: one message inserted per
transaction with the search triggers and without them (dropped), alternating in rounds, and one
progress write of a reply in flight (what a streaming reply does every 0.5 s: not indexed) against
the same write if in-flight content were indexed (a finished row rewritten: delete + insert in
FTS5). Figures are µs per write, best of the rounds. Nothing is asserted; tests never time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text, update

from kibitz.kit.db.migrations import upgrade_to_head_async
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import Chat, Message
from kibitz.services.chat.module import MIGRATIONS, VERSION_TABLE
from kibitz.services.chat.search.query import parse_query
from kibitz.services.chat.search.repository import SqliteMessageSearch
from kibitz.services.chat.storage import ChatDatabase

TENANT = uuid.uuid4()
USERS = [uuid.uuid4() for _ in range(100)]
WORDS = 60
_BATCH = 5_000
_rng = random.Random(7)
VOCABULARY = [
    "".join(_rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_rng.randint(3, 9)))
    for _ in range(5_000)
]
# Zipf-like weights: word k is drawn with probability ∝ 1/(k+1).
WEIGHTS = [1.0 / (rank + 1) for rank in range(len(VOCABULARY))]


def sentence(rng: random.Random, words: int = WORDS) -> str:
    """A message body."""
    return " ".join(rng.choices(VOCABULARY, WEIGHTS, k=words))


async def migrated(path: Path) -> ChatDatabase:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_to_head_async(
        database_url=url, script_location=MIGRATIONS, version_table=VERSION_TABLE
    )
    return ChatDatabase(url)


async def fill(database: ChatDatabase, total: int) -> None:
    """`total` finished messages over 100 users, 50 per chat."""
    rng = random.Random(total)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    chats: list[dict[str, object]] = []
    chat_of: dict[uuid.UUID, tuple[uuid.UUID, int]] = {}
    for index in range(total):
        user = USERS[index % len(USERS)]
        chat_id, count = chat_of.get(user, (new_id(), 0))
        if count == 0:
            chats.append(
                {
                    "id": chat_id,
                    "tenant_id": TENANT,
                    "user_id": user,
                    "agent_id": USERS[0],
                    "title": "bench",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        chat_of[user] = (chat_id, 0) if count == 49 else (chat_id, count + 1)
        if count == 49:
            chat_of[user] = (new_id(), 0)
        rows.append(
            {
                "id": new_id(),
                "chat_id": chat_id,
                "tenant_id": TENANT,
                "user_id": user,
                "sender": "user" if index % 2 else "agent",
                "content": sentence(rng),
                "status": "complete",
                "input_tokens": 0,
                "output_tokens": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(rows) == _BATCH:
            async with database.transaction() as session:
                if chats:
                    await session.execute(insert(Chat), chats)
                await session.execute(insert(Message), rows)
            rows, chats = [], []
    async with database.transaction() as session:
        if chats:
            await session.execute(insert(Chat), chats)
        if rows:
            await session.execute(insert(Message), rows)


async def time_queries(database: ChatDatabase, queries: int) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of each kind of query, for the first user."""
    kinds = {
        "rare word": VOCABULARY[3000],
        "common word": VOCABULARY[1],
        "two words": f"{VOCABULARY[5]} {VOCABULARY[40]}",
        "prefix": VOCABULARY[2][:3],
        "phrase": f'"{VOCABULARY[0]} {VOCABULARY[1]}"',
    }
    figures = {}
    for name, q in kinds.items():
        parsed = parse_query(q)
        samples = []
        for _ in range(queries):
            started = time.perf_counter()
            async with database.reading() as session:
                await SqliteMessageSearch(session).search(
                    parsed, tenant_id=TENANT, user_id=USERS[0], limit=21, offset=0
                )
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        figures[name] = (statistics.median(samples), samples[int(len(samples) * 0.99) - 1])
    return figures


async def write_costs(directory: Path, rounds: int = 5, writes: int = 400) -> dict[str, float]:
    """µs per one-message insert transaction, with and without the triggers, and per progress
    write of a reply (not indexed) against the same write indexed."""
    with_triggers = await migrated(directory / "with.db")
    without = await migrated(directory / "without.db")
    async with without.transaction() as session:
        for name in ("insert", "delete", "update"):
            await session.execute(text(f"DROP TRIGGER message_search_{name}"))
    for database in (with_triggers, without):
        await fill(database, 10_000)
    rng = random.Random(1)
    chat_id = new_id()
    now = datetime.now(UTC)
    for database in (with_triggers, without):
        async with database.transaction() as session:
            await session.execute(
                insert(Chat).values(
                    id=chat_id,
                    tenant_id=TENANT,
                    user_id=USERS[0],
                    agent_id=USERS[0],
                    title="t",
                    created_at=now,
                    updated_at=now,
                )
            )

    async def inserts(database: ChatDatabase) -> float:
        started = time.perf_counter()
        for _ in range(writes):
            async with database.transaction() as session:
                await session.execute(
                    insert(Message).values(
                        id=new_id(),
                        chat_id=chat_id,
                        tenant_id=TENANT,
                        user_id=USERS[0],
                        sender="agent",
                        content=sentence(rng, 300),
                        status="complete",
                        input_tokens=0,
                        output_tokens=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return (time.perf_counter() - started) / writes * 1e6

    async def progress(database: ChatDatabase, status: str) -> float:
        message_id = new_id()
        async with database.transaction() as session:
            await session.execute(
                insert(Message).values(
                    id=message_id,
                    chat_id=chat_id,
                    tenant_id=TENANT,
                    user_id=USERS[0],
                    sender="agent",
                    content="",
                    status=status,
                    input_tokens=0,
                    output_tokens=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        content = ""
        started = time.perf_counter()
        for _ in range(writes):
            content += " " + sentence(rng, 5)  # a reply grows by a few words per write
            async with database.transaction() as session:
                await session.execute(
                    update(Message)
                    .where(Message.id == message_id)
                    .values(content=content, status=status, updated_at=now)
                )
        return (time.perf_counter() - started) / writes * 1e6

    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, cost in (
            ("insert, triggers", await inserts(with_triggers)),
            ("insert, no triggers", await inserts(without)),
            ("progress write, not indexed (streaming)", await progress(with_triggers, "streaming")),
            ("progress write, no triggers", await progress(without, "streaming")),
            ("progress write if indexed", await progress(with_triggers, "complete")),
        ):
            best[name] = min(best.get(name, cost), cost)
    for database in (with_triggers, without):
        await database.dispose()
    return best


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for size in (int(value) for value in args.sizes.split(",")):
            database = await migrated(directory / f"search-{size}.db")
            await fill(database, size)
            figures = await time_queries(database, args.queries)
            await database.dispose()
            print(f"{size} messages (the searching user owns {size // len(USERS)}), limit 20:")
            for name, (p50, p99) in figures.items():
                print(f"  {name:12} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
        print("writes (µs each, best of 5 rounds; 300-word messages, replies growing 5 words):")
        for name, cost in (await write_costs(directory)).items():
            print(f"  {name:42} {cost:8.0f}")


if __name__ == "__main__":
    asyncio.run(main())
