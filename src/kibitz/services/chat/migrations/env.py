"""Alembic environment of the chat service (version table `chat_alembic_version`)."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.chat.models import Base

run_migrations_in_env(Base.metadata)
