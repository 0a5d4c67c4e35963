"""Alembic per service: each service has its own history and its own version table."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from kibitz.kit.db.database import create_engine
from kibitz.kit.platform import Platform
from kibitz.kit.settings import ServiceSettings


def alembic_config(*, database_url: str, script_location: Path, version_table: str) -> Config:
    """An Alembic config for one service's migrations."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["version_table"] = version_table
    return config


def upgrade_to_head(*, database_url: str, script_location: Path, version_table: str) -> None:
    """Apply every pending migration (blocking; call from a thread inside an event loop)."""
    config = alembic_config(
        database_url=database_url, script_location=script_location, version_table=version_table
    )
    command.upgrade(config, "head")


async def upgrade_to_head_async(
    *, database_url: str, script_location: Path, version_table: str
) -> None:
    """Apply every pending migration without blocking the running event loop."""
    await asyncio.to_thread(
        upgrade_to_head,
        database_url=database_url,
        script_location=script_location,
        version_table=version_table,
    )


def migration_lock_key(version_table: str) -> int:
    """The PostgreSQL advisory lock (a signed 64-bit key) that serialises one service's
    migrations: derived from its version table, so services never wait for each other."""
    digest = hashlib.sha256(f"kibitz-migrate:{version_table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def run_migrations_in_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py` (online mode, async engine)."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    version_table = str(config.attributes.get("version_table", "alembic_version"))

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting at once run `kibitz migrate` at once: each waits here for the
            # one ahead (the lock ends with the transaction), then finds its version current.
            # Without it two create the version table together: a unique violation on pg_type.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": migration_lock_key(version_table)},
            )
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())


@dataclass(frozen=True)
class ServiceSchema:
    """A service's own database: where its SQLite file and migrations live, its version table."""

    service: str
    migrations_dir: Path

    @property
    def version_table(self) -> str:
        """Each service keeps its Alembic history in a table of its own."""
        return f"{self.service}_alembic_version"

    def database_url(self, platform: Platform, settings: ServiceSettings) -> str:
        """The configured URL, or the service's SQLite file under the data dir."""
        return settings.resolved_database_url(
            data_dir=platform.settings.data_dir, service=self.service
        )

    async def upgrade(self, database_url: str) -> None:
        """Apply every pending migration."""
        await upgrade_to_head_async(
            database_url=database_url,
            script_location=self.migrations_dir,
            version_table=self.version_table,
        )
