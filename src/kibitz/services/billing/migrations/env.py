"""Alembic environment of the billing service."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.billing.models import Base

run_migrations_in_env(Base.metadata)
