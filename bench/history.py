"""History paging: a page of 50 from a chat of 100 000 messages versus one from a chat of 10.

    .venv/bin/python bench/history.py [--messages 100000] [--requests 300] [--postgres]

Starts auth and chat all-in-one in this process (SQLite in a temp dir, or fresh PostgreSQL
databases with --postgres), registers a user, writes straight into chat's database a chat of 10
messages, a chat of `--messages` messages in one branch (each the parent of the next: a branch
100 000 deep), and a branched chat of as many (every message of its main line has a sibling, a
leaf beside it), then times `GET /chat/history/{id}?limit=50` over loopback HTTP: the newest page
(the branch of the newest leaf), and a page from the middle through the `before` cursor. It prints
p50/p99 latency and the ratio big/small. Target (issues 5 and 22): ratio ≤ 1.5 (a branch is
walked up from the page's newest message, one primary-key lookup a step, for the page only).

The small chat's page holds its 10 messages; "page of 10" rows compare equal page sizes too. The
last row, outside the ratios, switches to the branch of the deep chat's first message
(`?leaf=`): the walk down to where its conversation went last is as long as the branch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import insert

from kibitz.kit.db import Database
from kibitz.kit.ids import new_id
from kibitz.kit.observability import configure_logging
from kibitz.kit.settings import PlatformSettings
from kibitz.runtime.server import run_all_in_one
from kibitz.services.chat.models import Chat, Message

PASSWORD = "correct horse battery staple"
_BATCH = 5_000


async def fill_chat(
    database: Database,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    messages: int,
    branched: bool = False,
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A chat of `messages` alternating user/agent messages, each the parent of the next (or,
    `branched`, half of them so and each of those with a leaf sibling written just before it);
    its id, its middle message's id and its first message's id."""
    now = datetime.now(UTC)
    chat_id = new_id()
    async with database.transaction() as session:
        session.add(
            Chat(
                id=chat_id,
                tenant_id=tenant_id,
                user_id=user_id,
                agent_id=uuid.uuid4(),
                agent_ids=[],
                title="bench",
                created_at=now,
                updated_at=now,
            )
        )
    middle = first = chat_id
    parent: uuid.UUID | None = None
    written = 0
    while written < messages:
        rows: list[dict[str, Any]] = []
        for index in range(written, min(messages, written + _BATCH)):
            message_id = new_id()
            side = branched and index % 2 == 0
            if index == messages // 2 + (1 if branched else 0):
                middle = message_id
            if index == 0:
                first = message_id
            rows.append(
                {
                    "id": message_id,
                    "chat_id": chat_id,
                    "parent_id": parent,
                    "tenant_id": tenant_id,
                    "user_id": user_id,
                    "sender": "user" if index % 2 == 0 else "agent",
                    "content": f"Message number {index}: a sentence of ordinary length here.",
                    "status": "complete",
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if not side:
                parent = message_id
        async with database.transaction() as session:
            await session.execute(insert(Message), rows)
        written += len(rows)
    return chat_id, middle, first


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timed(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any], n: int
) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = await http.get(url, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return samples


async def bench(args: argparse.Namespace, data_dir: Path, env: dict[str, str]) -> None:
    os.environ.update(env)
    settings = PlatformSettings(
        data_dir=data_dir,
        migrate_on_start=True,
        internal_token=SecretStr("bench-internal-token"),
        log_level="WARNING",
    )
    configure_logging(level="WARNING", json=True)
    async with (
        run_all_in_one(settings=settings, port=0, modules=["auth", "chat"]) as stack,
        httpx.AsyncClient(timeout=30, trust_env=False) as http,
    ):
        registered = await http.post(
            f"{stack.urls['auth']}/auth/register",
            json={"email": f"history-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
        )
        registered.raise_for_status()
        user = registered.json()["user"]
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        chat_db = Database(
            env.get("KIBITZ_CHAT_DATABASE_URL")
            or f"sqlite+aiosqlite:///{(data_dir / 'chat.db').resolve()}"
        )
        owner = {"tenant_id": uuid.UUID(user["tenant_id"]), "user_id": uuid.UUID(user["id"])}
        started = time.perf_counter()
        small, _, _ = await fill_chat(chat_db, messages=10, **owner)
        big, middle, first = await fill_chat(chat_db, messages=args.messages, **owner)
        tree, tree_middle, _ = await fill_chat(
            chat_db, messages=args.messages, branched=True, **owner
        )
        print(f"wrote {2 * args.messages + 10} messages in {time.perf_counter() - started:.1f} s")
        await chat_db.dispose()

        base = stack.urls["chat"]
        cases: list[tuple[str, uuid.UUID, dict[str, Any]]] = [
            ("chat of 10, page of 50", small, {"limit": 50}),
            (f"chat of {args.messages}, newest page of 50", big, {"limit": 50}),
            (f"chat of {args.messages}, middle page of 50", big, {"limit": 50, "before": middle}),
            ("chat of 10, page of 10", small, {"limit": 10}),
            (f"chat of {args.messages}, newest page of 10", big, {"limit": 10}),
            (f"branched chat of {args.messages}, newest page of 50", tree, {"limit": 50}),
            (
                f"branched chat of {args.messages}, middle page of 50",
                tree,
                {"limit": 50, "before": tree_middle},
            ),
        ]
        for _, chat_id, params in cases:  # warm
            await timed(http, f"{base}/chat/history/{chat_id}", headers, params, 5)
        # Interleaved, one request per case in turn, so background noise hits every case alike.
        results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(args.requests):
            for name, chat_id, params in cases:
                url = f"{base}/chat/history/{chat_id}"
                results[name] += await timed(http, url, headers, params, 1)
        for name, samples in results.items():
            print(
                f"{name:<42} p50 {statistics.median(samples):6.2f} ms   "
                f"p99 {percentile(samples, 0.99):6.2f} ms"
            )
        names = list(results)
        small50 = statistics.median(results[names[0]])
        for name in [*names[1:3], *names[5:7]]:
            print(f"ratio {name} / chat of 10: {statistics.median(results[name]) / small50:.2f}")
        print(
            "ratio page of 10 (big/small): "
            f"{statistics.median(results[names[4]]) / statistics.median(results[names[3]]):.2f}"
        )
        switch = await timed(
            http, f"{base}/chat/history/{big}", headers, {"limit": 50, "leaf": first}, 20
        )
        print(
            f"switch to the first message's branch (walk down {args.messages}): "
            f"p50 {statistics.median(switch):.2f} ms"
        )


async def with_postgres(args: argparse.Namespace, data_dir: Path) -> None:
    import asyncpg

    admin_dsn = os.environ.get(
        "KIBITZ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    suffix = uuid.uuid4().hex[:8]
    names = {service: f"kibitz_bench_{suffix}_{service}" for service in ("auth", "chat")}
    admin = await asyncpg.connect(admin_dsn)
    try:
        for database in names.values():
            await admin.execute(f'CREATE DATABASE "{database}"')
        env = {
            f"KIBITZ_{service.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
            for service, database in names.items()
        }
        await bench(args, data_dir, env)
    finally:
        for database in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kibitz-history-bench-") as data_dir:
        if args.postgres:
            asyncio.run(with_postgres(args, Path(data_dir)))
        else:
            asyncio.run(bench(args, Path(data_dir), {}))


if __name__ == "__main__":
    main()
