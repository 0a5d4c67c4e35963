"""The auth module: how the runtime builds, migrates and starts the auth service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.database import delete_in_batches, prune_quietly
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.encryption import SecretCipher
from kibitz.kit.events import Outbox
from kibitz.kit.http import forwarding_credential
from kibitz.kit.jwt import TokenVerifier
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.auth.accounts import events as account_events
from kibitz.services.auth.accounts.api import router as accounts_router
from kibitz.services.auth.accounts.service import AccountService
from kibitz.services.auth.api import router
from kibitz.services.auth.api_keys.api import internal as api_keys_internal
from kibitz.services.auth.api_keys.api import router as api_keys_router
from kibitz.services.auth.api_keys.service import ApiKeyService
from kibitz.services.auth.config import AuthSettings
from kibitz.services.auth.login_throttle import (
    CounterStore,
    LoginThrottle,
    MemoryCounters,
    RedisCounters,
)
from kibitz.services.auth.models import SessionRevocation, outbox_table
from kibitz.services.auth.service import AuthService
from kibitz.services.auth.sessions.service import Sessions
from kibitz.services.auth.signing_keys.service import KeyRing
from kibitz.services.auth.sso.api import router as sso_router
from kibitz.services.auth.sso.service import SsoService

KEY_FILE_NAME = "auth-encryption.key"

NAME = "auth"
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")


async def migrate(platform: Platform) -> None:
    """Apply the auth service's pending migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, AuthSettings()))


def _login_counters(platform: Platform, settings: AuthSettings) -> CounterStore:
    redis_url = platform.settings.redis_url
    # Shared by every auth replica through Redis; per process otherwise.
    if redis_url:
        return RedisCounters(redis_url, key_prefix=settings.login_throttle_key_prefix)
    return MemoryCounters()


def _cipher(platform: Platform, settings: AuthSettings) -> SecretCipher:
    if settings.encryption_key is not None:
        return SecretCipher.from_setting(settings.encryption_key.get_secret_value())
    # No key configured (all-in-one; run apart it is required): one is generated and kept
    # under the data dir.
    return SecretCipher.from_key_file(platform.settings.data_dir / KEY_FILE_NAME)


async def _prune_revocations(database: Database) -> None:
    """Delete session revocations whose tokens have all expired, every 10 minutes."""
    while True:
        await asyncio.sleep(600)
        await prune_quietly(
            delete_in_batches(
                database,
                SessionRevocation.__table__,  # type: ignore[arg-type]
                SessionRevocation.expires_at < datetime.now(UTC),
                batch=1000,
            ),
            what="session_revocations",
        )


def create_app(platform: Platform) -> FastAPI:
    """The auth service's app."""
    settings = AuthSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    keys = KeyRing(database)
    outbox = Outbox(outbox_table)
    tenants = platform.client("tenants") if platform.has_service("tenants") else None
    login_counters = _login_counters(platform, settings)
    sessions = Sessions(
        database=database,
        keys=keys,
        outbox=outbox,
        refresh_token_seconds=settings.refresh_token_seconds,
    )
    auth = AuthService(
        database=database,
        sessions=sessions,
        outbox=outbox,
        throttle=LoginThrottle(
            login_counters,
            free_per_account_and_address=settings.login_free_failures_per_account_and_address,
            free_per_address=settings.login_free_failures_per_address,
            account_ceiling=settings.login_failures_per_account,
            first_delay_seconds=settings.login_first_delay_seconds,
            max_delay_seconds=settings.login_max_delay_seconds,
            window_seconds=settings.login_failure_window_seconds,
        ),
        tenants=tenants,
    )
    sso = SsoService(
        database=database, auth=auth, settings=settings, cipher=_cipher(platform, settings)
    )

    api_key_service = ApiKeyService(keys=keys, outbox=outbox)
    account_service = AccountService(
        database=database, auth=auth, api_keys=api_key_service, outbox=outbox, tenants=tenants
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if platform.settings.migrate_on_start:
            await migrate(platform)
        await keys.load()
        tasks = [
            asyncio.create_task(outbox.run_relay(database, platform.bus)),
            asyncio.create_task(keys.keep_current()),
            asyncio.create_task(_prune_revocations(database)),
        ]
        removals = await account_events.subscribe(
            platform.bus, database=database, accounts=account_service
        )
        try:
            yield
        finally:
            await removals.cancel()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if tenants is not None:
                await tenants.aclose()
            if isinstance(login_counters, RedisCounters):
                await login_counters.aclose()
            await database.dispose()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, accounts_router, api_keys_router, api_keys_internal, sso_router],
        lifespan=lifespan,
        readiness_checks={"database": database.ping},
        gauges=ServiceGauges(NAME, database, outbox=outbox_table),
        description=(
            "Accounts, sessions (access and refresh tokens), the public signing keys, personal "
            "API keys, and single sign-on through OpenID Connect and GitHub."
        ),
    )
    app.state.database = database
    app.state.auth_settings = settings
    app.state.forwarding_credential = (
        forwarding_credential(platform.internal_token) if platform.internal_token else ""
    )
    app.state.auth_service = auth
    app.state.api_key_service = api_key_service
    app.state.account_service = account_service
    app.state.sso_service = sso
    # Verify against our own keys, without an HTTP call to ourselves.
    app.state.token_verifier = TokenVerifier(keys.jwks, platform.revocations)
    return app


module = Module(
    name=NAME,
    create_app=create_app,
    migrate=migrate,
    # A tenant's client secret stored through one replica, and a sign-in cookie sealed by the
    # replica that started the sign-in, must open on whichever replica reads them.
    shared_settings=("KIBITZ_AUTH_ENCRYPTION_KEY",),
)
