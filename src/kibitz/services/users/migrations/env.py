"""Alembic environment of the users service."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.users.models import Base

run_migrations_in_env(Base.metadata)
