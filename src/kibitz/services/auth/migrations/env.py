"""Alembic environment of the auth service."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.auth.models import Base

run_migrations_in_env(Base.metadata)
