"""Alembic environment of the tenants service."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.tenants.models import Base

run_migrations_in_env(Base.metadata)
