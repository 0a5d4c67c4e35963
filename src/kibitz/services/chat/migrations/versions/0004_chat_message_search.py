"""Full-text search over finished messages: SQLite FTS5, PostgreSQL tsvector + GIN.

Only finished messages (`complete`, `failed`, `stopped`) are indexed. A reply in flight is
rewritten every `persist_interval_seconds` (0.5 s) with everything that streamed so far; indexing
each of those writes would re-tokenize the whole reply every time (bench/chat_search.py measures
it), while nobody searches for half a sentence. The finishing write indexes it once.

SQLite: `message_search` is an external-content FTS5 table over the view
`message_search_source` (the finished messages, keyed by `messages.rowid`), kept in step by
triggers on `messages` (insert, update of content or status, delete), so no write path of the
service has to remember it. The `owner` column holds the user id as a single token: a search
matches it with the query, so FTS5 reads only the caller's postings of it. Porter stemming over
unicode61 ("running" finds "run"), diacritics folded.

Caution for later migrations: `messages.rowid` is the index's key. A migration that rebuilds
`messages` (Alembic's batch mode copying the table on SQLite) drops these triggers and may renumber
rows: it must recreate the triggers (`create_sqlite_search`) and rebuild the index afterwards
(`INSERT INTO message_search(message_search) VALUES ('rebuild')`). The test
`test_search_index_is_whole_at_head` checks this at head.

PostgreSQL: a stored generated column `search_vector` (English configuration, NULL while in
flight) with a GIN index; adding it rewrites the table once, which is the backfill.

Revision ID: chat_message_search
Revises: 0003_chat_outbox_headers
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "chat_message_search"
down_revision = "0003_chat_outbox_headers"
branch_labels = None
depends_on = None

SQLITE_UP = [
    """CREATE VIEW message_search_source AS
        SELECT rowid AS message_rowid, content, user_id AS owner FROM messages
        WHERE status IN ('complete', 'failed', 'stopped')""",
    """CREATE VIRTUAL TABLE message_search USING fts5(
        content, owner,
        content='message_search_source', content_rowid='message_rowid',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER message_search_insert AFTER INSERT ON messages
        WHEN new.status IN ('complete', 'failed', 'stopped') BEGIN
          INSERT INTO message_search(rowid, content, owner)
          VALUES (new.rowid, new.content, new.user_id);
        END""",
    """CREATE TRIGGER message_search_delete AFTER DELETE ON messages
        WHEN old.status IN ('complete', 'failed', 'stopped') BEGIN
          INSERT INTO message_search(message_search, rowid, content, owner)
          VALUES ('delete', old.rowid, old.content, old.user_id);
        END""",
    # An update is a delete of what was indexed and an insert of what is now finished, in that
    # order: one trigger, since SQLite runs several triggers of an event newest first. A progress
    # write of a reply in flight (neither side finished) does not enter it.
    """CREATE TRIGGER message_search_update AFTER UPDATE OF content, status ON messages
        WHEN old.status IN ('complete', 'failed', 'stopped')
          OR new.status IN ('complete', 'failed', 'stopped') BEGIN
          INSERT INTO message_search(message_search, rowid, content, owner)
          SELECT 'delete', old.rowid, old.content, old.user_id
          WHERE old.status IN ('complete', 'failed', 'stopped');
          INSERT INTO message_search(rowid, content, owner)
          SELECT new.rowid, new.content, new.user_id
          WHERE new.status IN ('complete', 'failed', 'stopped');
        END""",
    # The backfill: every finished message already stored.
    "INSERT INTO message_search(message_search) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS message_search_update",
    "DROP TRIGGER IF EXISTS message_search_delete",
    "DROP TRIGGER IF EXISTS message_search_insert",
    "DROP TABLE IF EXISTS message_search",
    "DROP VIEW IF EXISTS message_search_source",
]
POSTGRES_UP = [
    """ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        CASE WHEN status IN ('complete', 'failed', 'stopped') THEN to_tsvector('english'::regconfig, content) END
        ) STORED""",
    "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_messages_search_vector",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
]


def create_sqlite_search() -> None:
    """The FTS5 table, its source view and triggers, filled from the stored messages."""
    for statement in SQLITE_UP:
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        create_sqlite_search()
    else:
        for statement in POSTGRES_UP:
            op.execute(statement)


def downgrade() -> None:
    statements = SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWN
    for statement in statements:
        op.execute(statement)
