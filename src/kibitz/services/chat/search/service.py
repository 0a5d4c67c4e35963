"""Search over the caller's messages: parse what was typed, ask the index, shape the hits."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.errors import Unprocessable
from kibitz.kit.jwt import Principal
from kibitz.services.chat.search.query import parse_query
from kibitz.services.chat.search.repository import MARK_END, MARK_START, message_search
from kibitz.services.chat.search.schemas import Highlight, SearchHit, SearchPage

# Ranked results are paged by position; nobody reads past the first thousand hits of a search,
# and deep offsets make the database rank everything before them.
MAX_OFFSET = 1000


def encode_offset(offset: int) -> str:
    """An opaque cursor for the hits from `offset` on."""
    return base64.urlsafe_b64encode(f"search:{offset}".encode()).decode().rstrip("=")


def decode_offset(cursor: str | None) -> int:
    """The position a cursor stands for (422 when it is not one of ours)."""
    if cursor is None:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, _, value = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        offset = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("The cursor is not valid.") from exc
    if kind != "search" or not 0 <= offset <= MAX_OFFSET:
        raise Unprocessable("The cursor is not valid.")
    return offset


def plain_snippet(marked: str) -> tuple[str, list[Highlight]]:
    """The snippet without its markers, and where the marked words are in it."""
    parts: list[str] = []
    highlights: list[Highlight] = []
    length, start = 0, None
    for character in marked:
        if character == MARK_START:
            start = length
        elif character == MARK_END:
            if start is not None and length > start:
                highlights.append(Highlight(start=start, end=length))
            start = None
        else:
            parts.append(character)
            length += 1
    return "".join(parts), highlights


async def search_messages(
    session: AsyncSession, *, principal: Principal, q: str, limit: int, cursor: str | None
) -> SearchPage:
    """The caller's messages matching `q`, best first, a page at a time."""
    offset = decode_offset(cursor)
    query = parse_query(q)
    if query.empty:
        return SearchPage(items=[], next_cursor=None)
    rows = await message_search(session).search(
        query,
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        limit=limit + 1,
        offset=offset,
    )
    items = []
    for row in rows[:limit]:
        snippet, highlights = plain_snippet(row.snippet)
        items.append(
            SearchHit(
                chat_id=row.chat_id,
                message_id=row.message_id,
                chat_title=row.chat_title,
                sender=row.sender,
                snippet=snippet,
                highlights=highlights,
                created_at=row.created_at,
            )
        )
    following = offset + limit
    more = len(rows) > limit and following <= MAX_OFFSET
    return SearchPage(items=items, next_cursor=encode_offset(following) if more else None)
