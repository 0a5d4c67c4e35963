"""The agents module: its app, its migrations, and what it needs running (auth, for JWKS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.agents import events
from kibitz.services.agents.agent_cache import AgentCache
from kibitz.services.agents.api import internal, router
from kibitz.services.agents.api_key_cipher import ApiKeyCipher
from kibitz.services.agents.config import AgentsSettings
from kibitz.services.agents.knowledge import KnowledgeSources
from kibitz.services.agents.openai_compat.api import router as openai_router
from kibitz.services.agents.openai_compat.metering import UsageMeter
from kibitz.services.agents.openai_compat.storing import ChatKeeper
from kibitz.services.agents.plans import plan_reader
from kibitz.services.agents.providers.provider_set import ProviderSet
from kibitz.services.agents.service import AgentsRuntime

NAME = "agents"
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")


async def migrate(platform: Platform) -> None:
    """Apply the agents migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, AgentsSettings()))


def _cipher(platform: Platform, settings: AgentsSettings) -> ApiKeyCipher:
    if settings.encryption_key is not None:
        return ApiKeyCipher.from_setting(settings.encryption_key.get_secret_value())
    # No key configured (all-in-one; run apart it is required): one is generated and kept
    # under the data dir, 0600.
    return ApiKeyCipher.from_data_dir(platform.settings.data_dir)


def create_app(platform: Platform) -> FastAPI:
    """The agents app."""
    settings = AgentsSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    runtime = AgentsRuntime(
        settings=settings,
        database=database,
        cipher=_cipher(platform, settings),
        providers=ProviderSet(settings),
        plans=plan_reader(platform, cache_seconds=settings.plan_cache_seconds),
        agents=AgentCache(settings.agent_cache_seconds),
        knowledge=KnowledgeSources(
            platform,
            top_k=settings.knowledge_top_k,
            min_score=settings.knowledge_min_score,
            timeout_seconds=settings.knowledge_timeout_seconds,
        ),
    )
    usage_meter = UsageMeter(platform)
    chat_keeper = ChatKeeper(platform)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        deletions = await events.subscribe(platform.bus, runtime=runtime)
        try:
            yield
        finally:
            await deletions.cancel()
            await usage_meter.aclose()
            await chat_keeper.aclose()
            await runtime.providers.aclose()
            await runtime.plans.aclose()
            await runtime.knowledge.aclose()
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, internal, openai_router],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(NAME, database),
        description="Per-user AI agents and the LLM calls behind them.",
    )
    app.state.agents = runtime
    app.state.usage_meter = usage_meter
    app.state.chat_keeper = chat_keeper
    app.state.database = database
    return app


module = Module(
    name=NAME,
    create_app=create_app,
    depends_on=("auth",),
    migrate=migrate,
    publishes_events=False,
    # A key stored through one replica must be readable through every other.
    shared_settings=("KIBITZ_AGENTS_ENCRYPTION_KEY",),
)
