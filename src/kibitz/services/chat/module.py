"""The chat module: builds the app and its background work (outbox relay, stream fan-out,
reply jobs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import structlog
from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.migrations import upgrade_to_head_async
from kibitz.kit.events import Outbox
from kibitz.kit.jobs import JobQueue, create_job_queue
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.chat import events
from kibitz.services.chat.api import router
from kibitz.services.chat.config import ChatSettings
from kibitz.services.chat.export.api import router as export_router
from kibitz.services.chat.models import outbox_table, utcnow
from kibitz.services.chat.participants import plan_reader
from kibitz.services.chat.replies.generate import ReplyGenerator
from kibitz.services.chat.replies.jobs import ReplyJobs
from kibitz.services.chat.replies.orders import REPLY_JOB
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.search.api import router as search_router
from kibitz.services.chat.sending.quota import QuotaGate
from kibitz.services.chat.sending.repository import IdempotencyRepository
from kibitz.services.chat.service import ChatService
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.stored_completions import internal as stored_completions
from kibitz.services.chat.streams.fanout import create_fanout
from kibitz.services.chat.titles.propose import TitleProposer
from kibitz.services.chat.tree.api import router as tree_router

NAME = "chat"
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "chat_alembic_version"
# 5 min: how often expired Idempotency-Keys and abandoned replies are swept.
_SWEEP_SECONDS = 300.0

logger = structlog.get_logger("kibitz.chat")


def database_url(platform: Platform) -> str:
    """Where chat's database lives in this deployment."""
    return ChatSettings().resolved_database_url(data_dir=platform.settings.data_dir, service=NAME)


async def migrate(platform: Platform) -> None:
    """Apply chat's pending migrations."""
    await upgrade_to_head_async(
        database_url=database_url(platform), script_location=MIGRATIONS, version_table=VERSION_TABLE
    )


async def _sweep(database: Database, settings: ChatSettings) -> None:
    """Forget Idempotency-Keys past 24 h; fail replies whose generator went away (a crash)."""
    while True:
        try:
            now = utcnow()
            async with database.transaction() as session:
                await IdempotencyRepository(session).remove_expired(
                    before=now - timedelta(seconds=settings.idempotency_ttl_seconds)
                )
                failed = await ChatRepository(session).fail_stale(
                    untouched_since=now - timedelta(seconds=settings.stale_generation_seconds),
                    reason="The reply was interrupted.",
                )
            if failed:
                logger.warning("chat_stale_replies_failed", count=failed)
        except Exception:
            logger.warning("chat_sweep_failed")
        await asyncio.sleep(_SWEEP_SECONDS)


def reply_queue(platform: Platform, settings: ChatSettings) -> JobQueue:
    """The work queue replies travel on (built with the app, so its depth is a gauge; it
    connects only when chat starts)."""
    return create_job_queue(
        platform.settings.queue_url, namespace=NAME, lease_seconds=settings.reply_lease_seconds
    )


def chat_parts(
    platform: Platform, settings: ChatSettings, database: ChatDatabase, queue: JobQueue
) -> ChatService:
    """One of each part chat's steps use, wired for this deployment."""
    outbox = Outbox(outbox_table)
    fanout = create_fanout(
        platform.settings.redis_url, linger_seconds=settings.delta_linger_seconds
    )
    agents = platform.client_or_absent("agents")
    quota = QuotaGate(platform.client("tenants") if platform.has_service("tenants") else None)
    titles = TitleProposer(
        database=database,
        outbox=outbox,
        fanout=fanout,
        agents=agents,
        # Without the users service nobody can have opted in: no titles are proposed.
        users=platform.client("users") if platform.has_service("users") else None,
        quota=quota,
    )
    generator = ReplyGenerator(
        settings=settings,
        database=database,
        fanout=fanout,
        outbox=outbox,
        agents=agents,
        on_completed=titles.after_reply,
        quota=quota,
    )
    return ChatService(
        settings=settings,
        database=database,
        fanout=fanout,
        outbox=outbox,
        quota=quota,
        agents=agents,
        generator=generator,
        replies=ReplyJobs(queue=queue, generator=generator, database=database, settings=settings),
        plans=plan_reader(platform, cache_seconds=settings.plan_cache_seconds),
        titles=titles,
    )


def create_app(platform: Platform) -> FastAPI:
    """The chat service's app."""
    settings = ChatSettings()
    database = ChatDatabase(database_url(platform), pool=settings.database_pool())
    queue = reply_queue(platform, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        # Wired at start-up: the other services' addresses are known by then.
        chat = app.state.chat_service = chat_parts(platform, settings, database, queue)
        await chat.start()
        background = [
            asyncio.create_task(chat.outbox.run_relay(database, platform.bus)),
            asyncio.create_task(_sweep(database, settings)),
        ]
        deletions = await events.subscribe(platform.bus, database=database)
        try:
            yield
        finally:
            await deletions.cancel()
            await chat.close()
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, tree_router, stored_completions, search_router, export_router],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(
            NAME, database, outbox=outbox_table, jobs=queue, job_kinds=(REPLY_JOB,)
        ),
        description="Chats with agents: persisted history and live token streams.",
    )
    app.state.database = database
    return app


module = Module(
    name=NAME,
    create_app=create_app,
    depends_on=("auth", "agents"),
    requires=("tenants", "agents"),
    migrate=migrate,
)
