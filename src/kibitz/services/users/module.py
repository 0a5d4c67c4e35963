"""The users module: how the runtime builds, migrates and starts the users service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.events import Inbox
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.users import events
from kibitz.services.users.api import router
from kibitz.services.users.config import UsersSettings
from kibitz.services.users.directory import AuthAccounts, OwnAgents, Subscriptions
from kibitz.services.users.models import dead_letter_table, inbox_table
from kibitz.services.users.service import UsersService

NAME = "users"
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")


async def migrate(platform: Platform) -> None:
    """Apply the users service's pending migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, UsersSettings()))


def create_app(platform: Platform) -> FastAPI:
    """The users service's app."""
    settings = UsersSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    inbox = Inbox(database, inbox_table, dead_letter_table)
    users = UsersService(
        accounts=AuthAccounts(platform),
        subscriptions=Subscriptions(platform, ttl_seconds=settings.subscription_cache_seconds),
        agents=OwnAgents(platform),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        subscriptions = await events.subscribe(platform.bus, inbox=inbox, users=users)
        try:
            yield
        finally:
            for subscription in subscriptions:
                await subscription.cancel()
            await users.accounts.aclose()
            await users.subscriptions.aclose()
            await users.agents.aclose()
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(NAME, database, dead_letters=dead_letter_table),
        description="Profiles and preferences.",
    )
    app.state.database = database
    app.state.users_service = users
    app.state.inbox = inbox
    return app


module = Module(name=NAME, create_app=create_app, migrate=migrate)
