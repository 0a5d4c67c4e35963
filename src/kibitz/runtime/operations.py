"""What the operator commands do: rotate auth's signing key, replay dead letters, check a
deployment's settings and dependencies (`kibitz auth …`, `kibitz events …`, `kibitz doctor`)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from sqlalchemy import Table, delete, select

from kibitz.kit.db import Database
from kibitz.kit.db.admin import connection_problem, where
from kibitz.kit.events import EventEnvelope, create_bus
from kibitz.kit.events.bus import split_bus_url
from kibitz.kit.events.inbox import KEEP_HANDLED
from kibitz.kit.settings import PlatformSettings, invalid_settings, service_urls_from_env
from kibitz.runtime.children import StartupError
from kibitz.runtime.databases import database_url_of
from kibitz.runtime.registry import MODULE_PATHS, SERVICE_NAMES, available_modules
from kibitz.runtime.server import check_shared_settings

# 5 s: a dependency that takes longer to answer a health check is as good as down.
_CHECK_TIMEOUT_SECONDS = 5.0
# NATS JetStream drops an event id it saw within its duplicate window (2 min, see
# `kit/events/nats_jetstream.py`): a dead letter parked sooner after its first publication
# would be dropped, not replayed.
_REPLAY_NOT_BEFORE = timedelta(seconds=150)
# Consumers forget handled event ids after 7 days (`KEEP_HANDLED`); an older event
# replayed could be handled twice by the consumers that did handle it. A day's margin.
_REPLAY_NOT_AFTER = KEEP_HANDLED - timedelta(days=1)


# --- signing keys ---------------------------------------------------------------------------


async def rotate_signing_key(settings: PlatformSettings) -> Any:
    """Have auth sign with a new key (see `KeyRing.rotate`); the rotation's outcome."""
    from kibitz.services.auth.signing_keys.service import KeyRing

    database = Database(database_url_of("auth", settings))
    try:
        return await KeyRing(database).rotate()
    finally:
        await database.dispose()


# --- the agents service's encryption key ------------------------------------------------------


async def rotate_agents_key(settings: PlatformSettings) -> Any:
    """Re-encrypt every provider key stored by agents under the first key of
    `KIBITZ_AGENTS_ENCRYPTION_KEY` (see `services/agents/key_rotation.py`); its report.
    ValueError when the setting is missing (the generated key file stays as it is)."""
    from kibitz.services.agents.api_key_cipher import KEY_FILE_NAME, ApiKeyCipher
    from kibitz.services.agents.config import AgentsSettings
    from kibitz.services.agents.key_rotation import rotate_stored_keys

    agents = AgentsSettings()
    if agents.encryption_key is None:
        raise ValueError(
            "KIBITZ_AGENTS_ENCRYPTION_KEY is not set: set it to the new key followed by the old "
            f"ones, comma-separated (all-in-one, the old key is in {KEY_FILE_NAME} under "
            "KIBITZ_DATA_DIR), on every agents replica too, then run this again"
        )
    cipher = ApiKeyCipher.from_setting(agents.encryption_key.get_secret_value())
    database = Database(database_url_of("agents", settings))
    try:
        return await rotate_stored_keys(database, cipher), cipher.key_count
    finally:
        await database.dispose()


# --- dead letters ---------------------------------------------------------------------------


@dataclass
class ReplayReport:
    """What a replay did for one service."""

    service: str
    replayed: int = 0
    too_recent: int = 0
    too_old: int = 0


def dead_letter_tables() -> dict[str, Table]:
    """Each service of this build that consumes events, and its dead-letter table."""
    tables: dict[str, Table] = {}
    for name in SERVICE_NAMES:
        package = MODULE_PATHS[name].rsplit(".", 1)[0]
        try:
            models = importlib.import_module(f"{package}.models")
        except ModuleNotFoundError:
            continue
        table = getattr(models, "dead_letter_table", None)
        if isinstance(table, Table):
            tables[name] = table
    return tables


async def replay_dead_letters(
    settings: PlatformSettings, *, services: list[str], now: datetime | None = None
) -> list[ReplayReport]:
    """Publish each parked event again on the deployment's bus and forget it once published.

    Every consumer group gets it again: the groups that handled it skip it (their inbox knows
    its id), the one that parked it runs its handler anew (and parks it again if it still
    fails). Events parked moments ago, or too old for the inboxes to remember, are left.
    """
    if not settings.has_broker:
        raise ValueError(
            "the bus is in-process (KIBITZ_BUS_URL=memory): only the kibitz process that owns "
            "it can deliver events; set KIBITZ_BUS_URL to the deployment's broker"
        )
    now = now or datetime.now(UTC)
    tables = dead_letter_tables()
    bus = create_bus(settings.bus_url, retention=settings.bus_retention())
    await bus.start()
    reports = []
    try:
        for service in services:
            table = tables.get(service)
            if table is None:
                continue
            database = Database(database_url_of(service, settings))
            try:
                reports.append(await _replay(service, database, table, bus, now=now))
            finally:
                await database.dispose()
    finally:
        await bus.close()
    return reports


async def _replay(
    service: str, database: Database, table: Table, bus: Any, *, now: datetime
) -> ReplayReport:
    report = ReplayReport(service)
    async with database.transaction() as session:
        rows = (await session.execute(select(table).order_by(table.c.parked_at))).all()
    for row in rows:
        envelope = EventEnvelope.model_validate(row.envelope)
        if _aware(row.parked_at) > now - _REPLAY_NOT_BEFORE:
            report.too_recent += 1
            continue
        if _aware(envelope.occurred_at) < now - _REPLAY_NOT_AFTER:
            report.too_old += 1
            continue
        await bus.publish(envelope)
        # Forgotten only once published: a crash in between publishes it twice at worst,
        # which the consumers' inboxes absorb.
        async with database.transaction() as session:
            await session.execute(delete(table).where(table.c.id == row.id))
        report.replayed += 1
    return report


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time kibitz stores is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- doctor ---------------------------------------------------------------------------------


def settings_problems() -> list[str]:
    """One line per bad setting of the platform or of any module of this build."""
    problems: list[str] = []
    classes: list[type[BaseSettings]] = [PlatformSettings]
    for module_path in MODULE_PATHS.values():
        package = module_path.rsplit(".", 1)[0]
        try:
            config = importlib.import_module(f"{package}.config")
        except ModuleNotFoundError:
            continue
        classes += [
            cls
            for _, cls in inspect.getmembers(config, inspect.isclass)
            if issubclass(cls, BaseSettings) and cls.__module__ == config.__name__
        ]
    for settings_class in classes:
        try:
            settings_class()
        except ValidationError as error:
            problems += [f"invalid setting {line}" for line in invalid_settings(error)]
    return problems


async def dependency_problems(settings: PlatformSettings) -> list[str]:
    """One line per database, broker, Redis, Qdrant, Stripe or service address that does not
    answer (or billing's Stripe settings half set, or a setting every replica of a service run
    apart must share missing)."""
    checks: list[Awaitable[str | None]] = [
        _check_database(name, database_url_of(name, settings))
        for name in available_modules(SERVICE_NAMES)
    ]
    if settings.has_broker:
        checks.append(_check_bus(settings.bus_url))
    if settings.redis_url:
        checks.append(_check_redis(settings.redis_url))
    modules = available_modules(SERVICE_NAMES)
    if "knowledge" in modules:
        checks.append(_check_qdrant())
    if "billing" in modules:
        checks.append(_check_billing())
    urls = service_urls_from_env(SERVICE_NAMES)
    if urls and settings.internal_token is None:
        checks.append(_said("KIBITZ_INTERNAL_TOKEN is not set: services cannot call each other"))
    for name, replicas in urls.items():
        checks += [_check_service(name, url) for url in replicas]
    for name in urls.keys() & modules.keys():  # run apart here: what every replica must share
        try:
            check_shared_settings(modules[name])
        except StartupError as error:
            checks.append(_said(str(error)))
    results = await asyncio.gather(*checks)
    return [line for line in results if line]


async def _said(line: str) -> str:
    return line


async def _check_database(service: str, url: str) -> str | None:
    database = Database(url)
    try:
        await asyncio.wait_for(database.ping(), _CHECK_TIMEOUT_SECONDS)
    except Exception as error:
        problem = connection_problem(url, error) or f"{where(url)}: {type(error).__name__}"
        return f"{service} database: {problem}"
    finally:
        await database.dispose()
    return None


async def _check_bus(url: str) -> str | None:
    clean, _ = split_bus_url(url, "prefix")
    if clean.split(":", 1)[0].lower() in ("redis", "rediss"):
        problem = await _check_redis(clean)
        return problem and problem.replace("Redis", "event bus (Redis Streams)", 1)
    import nats

    async def quiet(_: Exception) -> None:
        """The failure is reported once, below, not by the client on every try."""

    try:
        client = await asyncio.wait_for(
            nats.connect(
                clean,
                connect_timeout=_CHECK_TIMEOUT_SECONDS,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                error_cb=quiet,
            ),
            _CHECK_TIMEOUT_SECONDS,
        )
    except Exception as error:
        return f"event bus {_without_credentials(clean)} does not answer: {_reason(error)}"
    try:
        # The server answers; JetStream (where the events are kept) must be on too.
        await client.jetstream(timeout=_CHECK_TIMEOUT_SECONDS).account_info()
    except Exception as error:
        return f"event bus {_without_credentials(clean)} has no JetStream: {_reason(error)}"
    finally:
        await client.close()
    return None


async def _check_redis(url: str) -> str | None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=_CHECK_TIMEOUT_SECONDS)
    try:
        await asyncio.wait_for(client.ping(), _CHECK_TIMEOUT_SECONDS)
    except Exception as error:
        return f"Redis {_without_credentials(url)} does not answer: {_reason(error)}"
    finally:
        await client.aclose()
    return None


async def _check_service(name: str, url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=_CHECK_TIMEOUT_SECONDS) as client:
            response = await client.get(f"{url}/healthz")
        if response.status_code == 200:
            return None
        return f"{name} at {url} answers /healthz with {response.status_code}"
    except httpx.HTTPError as error:
        return f"{name} at {url} does not answer: {_reason(error)}"


async def _check_qdrant() -> str | None:
    from kibitz.services.knowledge.config import KnowledgeSettings
    from kibitz.services.knowledge.retrieval.vectors import VectorStore

    settings = KnowledgeSettings()
    if not settings.qdrant_url:
        return None  # Qdrant's local mode, in the data directory
    key = settings.qdrant_api_key
    vectors = VectorStore.server(settings.qdrant_url, key.get_secret_value() if key else None)
    try:
        await asyncio.wait_for(vectors.ping(), _CHECK_TIMEOUT_SECONDS)
    except Exception as error:
        where = _without_credentials(settings.qdrant_url)
        return f"knowledge's Qdrant {where} does not answer: {type(error).__name__}"
    finally:
        await vectors.aclose()
    return None


async def _check_billing() -> str | None:
    from kibitz.services.billing.config import BillingSettings
    from kibitz.services.billing.stripe_api import StripeApi

    settings = BillingSettings()
    secret_key, webhook_secret = settings.stripe_secret_key, settings.stripe_webhook_secret
    has_key = bool(secret_key and secret_key.get_secret_value())
    has_webhook_secret = bool(webhook_secret and webhook_secret.get_secret_value())
    if has_key != has_webhook_secret:
        missing = "WEBHOOK_SECRET" if has_key else "SECRET_KEY"
        return (
            f"billing: KIBITZ_BILLING_STRIPE_{missing} is not set: billing stays off until "
            "both Stripe secrets are"
        )
    if not settings.enabled:
        return None
    assert secret_key is not None and webhook_secret is not None
    stripe = StripeApi(
        secret_key=secret_key.get_secret_value(),
        webhook_secret=webhook_secret.get_secret_value(),
        api_base=settings.stripe_api_base,
        timeout_seconds=_CHECK_TIMEOUT_SECONDS,
        webhook_tolerance_seconds=settings.webhook_tolerance_seconds,
    )
    where = settings.stripe_api_base or "https://api.stripe.com"
    try:
        problem = await asyncio.wait_for(stripe.key_problem(), _CHECK_TIMEOUT_SECONDS * 2)
    except TimeoutError:
        problem = "does not answer in time"
    finally:
        await stripe.aclose()
    if problem is not None:
        return f"billing: Stripe at {where} {problem}"
    if not settings.prices:
        return "billing: KIBITZ_BILLING_PRICES is empty: no paid plan can be bought"
    return None


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__


def _without_credentials(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url
