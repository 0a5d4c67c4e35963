"""Alembic environment of the auth service."""

from kibitz.kit.db.migrations import run_migrations_in_env
from kibitz.services.auth.api_keys import models as api_key_models  # noqa: F401 - its table
from kibitz.services.auth.models import Base
from kibitz.services.auth.sso import models as sso_models  # noqa: F401 - registers SSO tables

run_migrations_in_env(Base.metadata)
