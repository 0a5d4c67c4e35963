"""Shapes of the search API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class Highlight(BaseModel):
    """Where a matched word is in the snippet: `snippet[start:end]` (characters)."""

    start: int
    end: int


class SearchHit(BaseModel):
    """A message that matches, with a snippet of it around the matched words."""

    chat_id: uuid.UUID
    message_id: uuid.UUID
    chat_title: str
    sender: Literal["user", "agent"]
    # Plain text (no markup): render `highlights` as marks, the rest as text.
    snippet: str
    highlights: list[Highlight]
    created_at: datetime


class SearchPage(BaseModel):
    """Hits, best first; `next_cursor` fetches the next ones."""

    items: list[SearchHit]
    next_cursor: str | None
