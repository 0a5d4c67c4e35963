"""Settings: one `KIBITZ_` prefix, a database URL per service, SQLite under the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kibitz.kit.db.database import ConnectionPool
from kibitz.kit.events.bus import Retention
from kibitz.kit.private_files import private_directory

ENV_PREFIX = "KIBITZ_"


class PlatformSettings(BaseSettings):
    """What every process shares, whichever service it runs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Path("./data")
    # Unset: rate limits and stream fan-out stay in memory (all-in-one).
    redis_url: str | None = None
    # "memory" (in-process), "redis://…" (Redis Streams) or "nats://…" (NATS JetStream).
    bus_url: str = "memory"
    # Where work such as chat replies waits for a process to claim it (kit.jobs): "memory"
    # (in-process), "redis://…" (Redis Streams) or "nats://…" (NATS JetStream).
    queue_url: str = "memory"
    # What the broker keeps (kit.events.Retention): far beyond any consumer's redelivery.
    bus_max_age_hours: PositiveFloat = 168.0
    bus_max_bytes: PositiveInt = 1024**3
    bus_max_events: PositiveInt = 1_000_000
    # Shared secret services present to each other on internal routes; generated all-in-one.
    internal_token: SecretStr | None = None
    migrate_on_start: bool = False
    log_level: str = "INFO"
    # Unset: JSON lines unless stderr is a terminal, where people read them (kit.observability).
    log_json: bool | None = None
    # OTLP/HTTP endpoint traces go to (e.g. http://collector:4318); unset, OpenTelemetry's own
    # OTEL_EXPORTER_OTLP_ENDPOINT is read, and without either tracing is off (kit.tracing).
    otlp_endpoint: str | None = None
    # All-in-one: modules that run in child processes of their own (comma-separated), so that
    # the model streams of agents use a second core, and knowledge's embedding and Qdrant's
    # local mode (pure Python) never hold the other services' event loop. Only modules that
    # publish no events may (the parent relays them the events they consume).
    own_processes: Annotated[list[str], NoDecode] = ["agents", "knowledge"]

    @property
    def has_broker(self) -> bool:
        """Whether events go through a broker every process connects to (else: in memory)."""
        return self.bus_url not in ("", "memory")

    def bus_retention(self) -> Retention:
        """What the broker keeps of the event streams."""
        return Retention(
            max_age_seconds=self.bus_max_age_hours * 3600,
            max_bytes=self.bus_max_bytes,
            max_events=self.bus_max_events,
        )

    @field_validator("own_processes", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class ServiceSettings(BaseSettings):
    """Base of every service's own settings (`KIBITZ_<SERVICE>_…`)."""

    model_config = SettingsConfigDict(extra="ignore")

    database_url: str | None = None
    # PostgreSQL connections one process keeps, may add under load, and how long (s) a request
    # waits for one before answering 503 (see `kit.db.ConnectionPool`; the README's sum).
    database_pool_size: PositiveInt = ConnectionPool.size
    database_max_overflow: NonNegativeInt = ConnectionPool.max_overflow
    database_pool_timeout_seconds: PositiveFloat = ConnectionPool.timeout_seconds
    database_connect_timeout_seconds: PositiveFloat = ConnectionPool.connect_timeout_seconds

    def database_pool(self) -> ConnectionPool:
        """This service's connection pool, as configured."""
        return ConnectionPool(
            size=self.database_pool_size,
            max_overflow=self.database_max_overflow,
            timeout_seconds=self.database_pool_timeout_seconds,
            connect_timeout_seconds=self.database_connect_timeout_seconds,
        )

    def resolved_database_url(self, *, data_dir: Path, service: str) -> str:
        """The configured URL, or a SQLite file named after the service under the data dir."""
        if self.database_url:
            return self.database_url
        private_directory(data_dir)
        return f"sqlite+aiosqlite:///{(data_dir / f'{service}.db').resolve()}"


def service_urls_from_env(names: list[str]) -> dict[str, list[str]]:
    """Read `KIBITZ_<NAME>_URL` (comma-separated replicas) for every named service that has one."""
    import os

    urls: dict[str, list[str]] = {}
    for name in names:
        raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}_URL", "")
        replicas = [url.strip().rstrip("/") for url in raw.split(",") if url.strip()]
        if replicas:
            urls[name] = replicas
    return urls


def _settings_classes(root: type[BaseSettings] = BaseSettings) -> dict[str, type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {}
    for subclass in root.__subclasses__():
        found[subclass.__name__] = subclass
        found.update(_settings_classes(subclass))
    return found


def invalid_settings(error: ValidationError) -> list[str]:
    """One line per bad setting, named by its environment variable, without the value given
    (it may be a secret): `KIBITZ_CHAT_HEARTBEAT_SECONDS: Input should be greater than 0`.
    Empty when the error is not about settings."""
    settings_class = _settings_classes().get(error.title)
    if settings_class is None:
        return []
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    return [
        f"{prefix}{'.'.join(str(part) for part in detail['loc'])}".upper() + f": {detail['msg']}"
        for detail in error.errors(include_input=False, include_url=False)
    ]
