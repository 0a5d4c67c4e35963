"""Alembic environment of the knowledge service (version table `knowledge_alembic_version`)."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.knowledge.models import Base

run_migrations_in_env(Base.metadata)
