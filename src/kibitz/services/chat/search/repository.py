"""The search queries, one per database: FTS5 on SQLite, tsvector + GIN on PostgreSQL.

Both take the owner (tenant and user) as parameters and filter the stored messages by them in
the query itself: the index narrows, the owner columns decide.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Row, String, Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.chat.models import UTCDateTime
from kibitz.services.chat.search.query import SearchQuery

# Highlight markers in the snippets the databases make: private-use characters that the
# service turns into offsets (the answer never carries markup to be rendered as HTML).
MARK_START, MARK_END = "\ue000", "\ue001"
# Words of context in a snippet.
SNIPPET_WORDS = 24
# Without MaxFragments: a short message whole, a long one from around its first match (fragment
# mode drops the words of a short message around its match).
_HEADLINE_OPTIONS = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={SNIPPET_WORDS}, MinWords=12"
)

_RESULT_COLUMNS = {
    "id": Uuid,
    "chat_id": Uuid,
    "sender": String,
    "created_at": UTCDateTime,
    "title": String,
    "snippet": String,
}

_SQLITE_SEARCH = (
    text(
        """
    SELECT m.id AS id, m.chat_id AS chat_id, m.sender AS sender, m.created_at AS created_at,
           c.title AS title,
           snippet(message_search, 0, :mark_start, :mark_end, '…', :snippet_words) AS snippet
    FROM message_search
    JOIN messages AS m ON m.rowid = message_search.rowid
    JOIN chats AS c ON c.id = m.chat_id
    WHERE message_search MATCH :match
      AND m.tenant_id = :tenant_id AND m.user_id = :user_id
      AND c.tenant_id = :tenant_id AND c.user_id = :user_id
    ORDER BY bm25(message_search, 1.0, 0.0), m.rowid DESC
    LIMIT :limit OFFSET :offset
    """
    )
    .bindparams(bindparam("tenant_id", type_=Uuid), bindparam("user_id", type_=Uuid))
    .columns(**_RESULT_COLUMNS)
)

# The page is ranked first; ts_headline (which re-parses each document) runs on its rows only.
# `{tsquery}` is an expression of bound parameters only (see `_tsquery`).
_POSTGRES_SEARCH = """
    WITH query AS (SELECT {tsquery} AS q),
    page AS (
        SELECT m.id, m.chat_id, m.sender, m.created_at, m.content, c.title,
               ts_rank_cd(m.search_vector, query.q) AS score
        FROM query, messages AS m
        JOIN chats AS c ON c.id = m.chat_id
        WHERE m.search_vector @@ query.q
          AND m.tenant_id = :tenant_id AND m.user_id = :user_id
          AND c.tenant_id = :tenant_id AND c.user_id = :user_id
        ORDER BY score DESC, m.id DESC
        LIMIT :limit OFFSET :offset
    )
    SELECT page.id AS id, page.chat_id AS chat_id, page.sender AS sender,
           page.created_at AS created_at, page.title AS title,
           ts_headline('english', page.content, query.q,
                       :headline_options) AS snippet
    FROM page, query
    ORDER BY page.score DESC, page.id DESC
    """


@dataclass(frozen=True)
class SearchRow:
    """A hit as the database gives it; `snippet` carries highlight markers."""

    message_id: uuid.UUID
    chat_id: uuid.UUID
    sender: str
    created_at: datetime
    chat_title: str
    snippet: str


class MessageSearch(Protocol):
    """Ranked full-text hits among one user's messages."""

    async def search(
        self,
        query: SearchQuery,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        limit: int,
        offset: int,
    ) -> Sequence[SearchRow]:
        """Up to `limit` hits after the first `offset`, best first."""
        ...


def _rows(rows: Sequence[Row[Any]]) -> list[SearchRow]:
    return [
        SearchRow(
            message_id=row.id,
            chat_id=row.chat_id,
            sender=row.sender,
            created_at=row.created_at,
            chat_title=row.title,
            snippet=row.snippet or "",
        )
        for row in rows
    ]


class SqliteMessageSearch:
    """FTS5 over the `message_search` table (see migration chat_message_search)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self,
        query: SearchQuery,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        limit: int,
        offset: int,
    ) -> Sequence[SearchRow]:
        """Ranked by BM25; the owner token keeps FTS5 on the caller's postings."""
        match = f'owner : "{user_id.hex}" AND {query.fts5()}'
        parameters = {
            "match": match,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "limit": limit,
            "offset": offset,
            "mark_start": MARK_START,
            "mark_end": MARK_END,
            "snippet_words": SNIPPET_WORDS,
        }
        return _rows((await self.session.execute(_SQLITE_SEARCH, parameters)).all())


class PostgresMessageSearch:
    """`search_vector @@ tsquery` on the GIN index, ranked by cover density."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self,
        query: SearchQuery,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        limit: int,
        offset: int,
    ) -> Sequence[SearchRow]:
        """Ranked by ts_rank_cd, newest first among equals."""
        parts, parameters = [], {}
        for index, term in enumerate(query.terms):
            name = f"term_{index}"
            if term.prefix:
                # A prefix term is \w+ only (query.py): it cannot carry tsquery syntax.
                parts.append(f"to_tsquery('english', :{name} || ':*')")
            else:
                parts.append(f"phraseto_tsquery('english', :{name})")
            parameters[name] = term.text
        # Only placeholder names are put into the text; the terms themselves are bound.
        expression = " && ".join(parts)
        statement = text(_POSTGRES_SEARCH.format(tsquery=expression)).columns(**_RESULT_COLUMNS)
        values = {
            **parameters,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "limit": limit,
            "offset": offset,
            "headline_options": _HEADLINE_OPTIONS,
        }
        return _rows((await self.session.execute(statement, values)).all())


def message_search(session: AsyncSession) -> MessageSearch:
    """The search of the session's database."""
    if session.get_bind().dialect.name == "sqlite":
        return SqliteMessageSearch(session)
    return PostgresMessageSearch(session)
