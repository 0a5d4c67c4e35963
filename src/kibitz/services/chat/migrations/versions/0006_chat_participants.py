"""Several agents in a chat: `chats.agent_ids` (the first is the default agent) and `chats.mode`;
`messages.agent_id` (the agent that wrote a reply; null for the user's messages).

Revision ID: chat_participants
Revises: chat_reply_jobs
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chat_participants"
down_revision = "chat_reply_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch (copy-and-rename) of `chats` on SQLite would drop the old table,
    # and with it, through ON DELETE CASCADE, every message.
    op.add_column("chats", sa.Column("agent_ids", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "chats", sa.Column("mode", sa.String(16), nullable=False, server_default="direct")
    )
    op.add_column("messages", sa.Column("agent_id", sa.Uuid(), nullable=True))
    # Existing chats have their one agent as the only participant; their replies are its.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE chats SET agent_ids = json_build_array(agent_id::text)")
    else:  # SQLite keeps a UUID as 32 hex digits, which reads back as the same UUID
        op.execute("UPDATE chats SET agent_ids = json_array(agent_id)")
    op.execute(
        "UPDATE messages SET agent_id = "
        "(SELECT chats.agent_id FROM chats WHERE chats.id = messages.chat_id) "
        "WHERE sender = 'agent'"
    )


def downgrade() -> None:
    op.drop_column("messages", "agent_id")
    op.drop_column("chats", "mode")
    op.drop_column("chats", "agent_ids")
