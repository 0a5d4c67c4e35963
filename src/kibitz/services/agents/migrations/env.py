"""Alembic environment of the agents service (version table `agents_alembic_version`)."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.agents.models import Base

run_migrations_in_env(Base.metadata)
