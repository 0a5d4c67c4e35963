"""Replies are jobs: the `reply_jobs` table (a reply's lease while it is in flight).

Revision ID: chat_reply_jobs
Revises: chat_message_search
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chat_reply_jobs"
down_revision = "chat_message_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reply_jobs",
        sa.Column(
            "message_id",
            sa.Uuid(),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reply_jobs_user", "reply_jobs", ["user_id"])
    op.create_index("ix_reply_jobs_lease", "reply_jobs", ["lease_until"])
    # Replies left in flight by the code before this one have no job: they were interrupted.
    op.execute(
        "UPDATE messages SET status = 'failed', error = 'The reply was interrupted.' "
        "WHERE sender = 'agent' AND status IN ('pending', 'streaming')"
    )


def downgrade() -> None:
    op.drop_index("ix_reply_jobs_lease", table_name="reply_jobs")
    op.drop_index("ix_reply_jobs_user", table_name="reply_jobs")
    op.drop_table("reply_jobs")
