"""Orchestrated turns: `messages.delegated` marks an answer a participant gave the orchestrator
(its `parent_id` is the orchestrator's reply), so branch views nest it instead of branching.

Revision ID: chat_delegated_messages
Revises: chat_participants
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chat_delegated_messages"
down_revision = "chat_participants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (a SQLite batch copy of `messages` would lose its reply jobs' rows).
    op.add_column("messages", sa.Column("parent_id", sa.Uuid(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("delegated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("messages", "delegated")
    op.drop_column("messages", "parent_id")
