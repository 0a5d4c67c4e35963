"""Where each service's database is, read the way the service reads it (for operator commands)."""

from __future__ import annotations

from kibitz.kit.settings import ENV_PREFIX, PlatformSettings, ServiceSettings


def database_url_of(service: str, settings: PlatformSettings) -> str:
    """`KIBITZ_<SERVICE>_DATABASE_URL`, or the service's SQLite file under the data dir."""
    own = ServiceSettings(_env_prefix=f"{ENV_PREFIX}{service.upper()}_")
    return own.resolved_database_url(data_dir=settings.data_dir, service=service)
