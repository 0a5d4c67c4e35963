"""Session revocations: sessions ended before their access tokens expired, kept until then.

Revision ID: 0005_session_revocations
Revises: 0004_auth_outbox_headers
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_session_revocations"
down_revision: str | None = "0004_auth_outbox_headers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        sa.Column("session_id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_session_revocations_revoked_at", "session_revocations", ["revoked_at"])
    op.create_index("ix_session_revocations_expires_at", "session_revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_table("session_revocations")
