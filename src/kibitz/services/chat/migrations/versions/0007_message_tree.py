"""A chat is a tree of messages: `messages.parent_id` (null for a root) and `messages.delegated`
(an answer an orchestrator asked for: a child of its reply, not a step of the conversation).

Existing chats become one branch: each message's parent is the one before it in its chat (by
created_at, then id). The backfill runs a chat range at a time (one window-function UPDATE per
range), so a database of millions of messages is never one statement's worth of work; it needs
SQLite 3.33 (UPDATE … FROM) or any PostgreSQL. Plain ADD COLUMNs: a batch (copy-and-rename) of
`messages` on SQLite would drop the search index's triggers (see chat_message_search).

Revision ID: chat_message_tree
Revises: chat_participants
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "chat_message_tree"
down_revision = "chat_participants"
branch_labels = None
depends_on = None

# Chats per backfill statement: a range's messages are sorted and updated at once.
_CHATS_PER_BATCH = 500

# The last chat id of the next range (PostgreSQL has no max(uuid)).
_RANGE_END = sa.text(
    "SELECT id FROM (SELECT id FROM chats WHERE id > :after ORDER BY id LIMIT :n) AS page"
    " ORDER BY id DESC LIMIT 1"
)
_FIRST_RANGE_END = sa.text(
    "SELECT id FROM (SELECT id FROM chats ORDER BY id LIMIT :n) AS page ORDER BY id DESC LIMIT 1"
)
_LINK = """
    UPDATE messages SET parent_id = ordered.previous
    FROM (
        SELECT id, lag(id) OVER (PARTITION BY chat_id ORDER BY created_at, id) AS previous
        FROM messages WHERE {range}
    ) AS ordered
    WHERE messages.id = ordered.id AND ordered.previous IS NOT NULL
"""
_LINK_FIRST = sa.text(_LINK.format(range="chat_id <= :last"))
_LINK_NEXT = sa.text(_LINK.format(range="chat_id > :after AND chat_id <= :last"))


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.Uuid(), nullable=True))
    op.add_column(
        "messages",
        sa.Column("delegated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    bind = op.get_bind()
    after = None
    while True:
        if after is None:
            last = bind.execute(_FIRST_RANGE_END, {"n": _CHATS_PER_BATCH}).scalar()
        else:
            last = bind.execute(_RANGE_END, {"after": after, "n": _CHATS_PER_BATCH}).scalar()
        if last is None:
            break
        if after is None:
            bind.execute(_LINK_FIRST, {"last": last})
        else:
            bind.execute(_LINK_NEXT, {"after": after, "last": last})
        after = last
    # Children of a message (siblings, "has it a reply?") and a chat's roots: one range scan.
    op.create_index("ix_messages_chat_parent", "messages", ["chat_id", "parent_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_chat_parent", table_name="messages")
    op.drop_column("messages", "delegated")
    op.drop_column("messages", "parent_id")
