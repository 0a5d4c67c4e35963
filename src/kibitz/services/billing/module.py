"""The billing module: how the runtime builds, migrates and starts the billing service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.events import Outbox
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.billing.api import internal, router
from kibitz.services.billing.config import BillingSettings
from kibitz.services.billing.models import outbox_table
from kibitz.services.billing.service import BillingService
from kibitz.services.billing.stripe_api import StripeApi

NAME = "billing"
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")
logger = structlog.get_logger("kibitz.billing")


async def migrate(platform: Platform) -> None:
    """Apply the billing service's pending migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, BillingSettings()))


def _stripe_api(settings: BillingSettings) -> StripeApi | None:
    if not settings.enabled:
        return None
    assert settings.stripe_secret_key is not None and settings.stripe_webhook_secret is not None
    return StripeApi(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
        api_base=settings.stripe_api_base,
        timeout_seconds=settings.stripe_timeout_seconds,
        webhook_tolerance_seconds=settings.webhook_tolerance_seconds,
    )


async def _expire_lapsed(
    database: Database, billing: BillingService, settings: BillingSettings
) -> None:
    """Grace periods and cancelled periods run out with no webhook to say so: look regularly."""
    while True:
        try:
            async with database.transaction() as session:
                await billing.expire_lapsed(session, now=datetime.now(UTC))
        except Exception:
            logger.exception("billing_sweep_failed")
        await asyncio.sleep(settings.sweep_seconds)


def create_app(platform: Platform) -> FastAPI:
    """The billing service's app."""
    settings = BillingSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    outbox = Outbox(outbox_table)
    billing = BillingService(
        stripe=_stripe_api(settings),
        outbox=outbox,
        prices=settings.prices,
        free_plan=settings.free_plan,
        public_url=settings.public_url,
        grace_period=timedelta(seconds=settings.grace_period_seconds),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        background = [asyncio.create_task(outbox.run_relay(database, platform.bus))]
        if billing.enabled:
            background.append(asyncio.create_task(_expire_lapsed(database, billing, settings)))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if billing.stripe is not None:
                await billing.stripe.aclose()
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, internal],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(NAME, database, outbox=outbox_table),
        description="Stripe customers, subscriptions, invoices and webhooks.",
    )
    app.state.database = database
    app.state.billing_service = billing
    app.state.outbox = outbox
    return app


module = Module(name=NAME, create_app=create_app, migrate=migrate)
