"""The tenants module: how the runtime builds, migrates and starts the tenants service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database, prune_quietly
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.events import Inbox, Outbox
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.tenants import events, repository
from kibitz.services.tenants.agent_counts import AgentCounts
from kibitz.services.tenants.api import internal, router
from kibitz.services.tenants.billing_status import BillingStatus
from kibitz.services.tenants.catalogue import load_catalogue
from kibitz.services.tenants.config import TenantsSettings
from kibitz.services.tenants.models import dead_letter_table, inbox_table, outbox_table
from kibitz.services.tenants.service import TenantsService

NAME = "tenants"
# 1 h between sweeps of expired reservation keys.
_SWEEP_SECONDS = 3600.0
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")


async def migrate(platform: Platform) -> None:
    """Apply the tenants service's pending migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, TenantsSettings()))


async def _sweep(database: Database, settings: TenantsSettings) -> None:
    """Forget reservation keys past their time, hourly (the table would grow forever)."""
    while True:
        cutoff = datetime.now(UTC) - timedelta(hours=settings.reservation_key_ttl_hours)
        await prune_quietly(
            repository.forget_reservation_keys(database, created_before=cutoff),
            what="tenants reservation keys",
        )
        await asyncio.sleep(_SWEEP_SECONDS)


def create_app(platform: Platform) -> FastAPI:
    """The tenants service's app."""
    settings = TenantsSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    outbox = Outbox(outbox_table)
    inbox = Inbox(database, inbox_table, dead_letter_table)
    tenants = TenantsService(
        catalogue=load_catalogue(settings.plans_file),
        outbox=outbox,
        invite_ttl_hours=settings.invite_ttl_hours,
        agent_counts=AgentCounts(platform),
        billing=BillingStatus(platform),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        background = [
            asyncio.create_task(outbox.run_relay(database, platform.bus)),
            asyncio.create_task(_sweep(database, settings)),
        ]
        subscription = await events.subscribe(platform.bus, inbox=inbox, tenants=tenants)
        try:
            yield
        finally:
            await subscription.cancel()
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if tenants.agent_counts is not None:
                await tenants.agent_counts.aclose()
            if tenants.billing is not None:
                await tenants.billing.aclose()
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, internal],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(NAME, database, outbox=outbox_table, dead_letters=dead_letter_table),
        description="Tenants, plans, memberships, invites and usage metering.",
    )
    app.state.database = database
    app.state.tenants_service = tenants
    app.state.inbox = inbox
    app.state.outbox = outbox
    return app


module = Module(name=NAME, create_app=create_app, migrate=migrate)
