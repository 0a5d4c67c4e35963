"""Request and response shapes of the knowledge API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kibitz.kit.inputs import MultiLineText, SingleLineText, StrictInt

ScopeName = Literal["private", "tenant"]
StatusName = Literal["pending", "indexing", "indexed", "failed"]


class CollectionCreate(BaseModel):
    """A new collection."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLineText = Field(min_length=1, max_length=200)
    description: MultiLineText = Field(default="", max_length=2000)
    scope: ScopeName = "private"


class CollectionUpdate(BaseModel):
    """Fields to change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLineText | None = Field(default=None, min_length=1, max_length=200)
    description: MultiLineText | None = Field(default=None, max_length=2000)
    scope: ScopeName | None = None


class CollectionRead(BaseModel):
    """A collection as its readers see it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    description: str
    scope: ScopeName
    documents: int
    created_at: datetime
    updated_at: datetime


class CollectionList(BaseModel):
    """The caller's collections and the tenant's shared ones, oldest first."""

    items: list[CollectionRead]
    next_cursor: str | None = None


class TextDocumentCreate(BaseModel):
    """A document given as text rather than a file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: SingleLineText = Field(min_length=1, max_length=300)
    # Hard cap; the configured (smaller) upload limit answers 413.
    text: str = Field(min_length=1, max_length=20_000_000)


class DocumentRead(BaseModel):
    """A document and how far its indexing got."""

    id: uuid.UUID
    collection_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    media_type: str
    size_bytes: int
    status: StatusName
    chunks: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class DocumentList(BaseModel):
    """A collection's documents, oldest first."""

    items: list[DocumentRead]
    next_cursor: str | None = None


class SearchRequest(BaseModel):
    """What to look for, and where."""

    model_config = ConfigDict(extra="forbid")

    query: MultiLineText = Field(min_length=1, max_length=4000)
    collection_ids: list[uuid.UUID] = Field(min_length=1, max_length=20)
    top_k: StrictInt = Field(default=5, ge=1, le=20)


class SearchHit(BaseModel):
    """One chunk found, with its similarity (cosine, higher is closer)."""

    document_id: uuid.UUID
    collection_id: uuid.UUID
    title: str
    chunk_id: uuid.UUID
    text: str
    score: float


class SearchResult(BaseModel):
    """The best chunks, best first."""

    items: list[SearchHit]


class InternalSearchRequest(SearchRequest):
    """A search on a user's behalf (agents, while preparing a reply)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID


class VisibleCollectionsRequest(BaseModel):
    """Which of these collections may this user read? (agents, before saving an agent)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    collection_ids: list[uuid.UUID] = Field(max_length=20)


class VisibleCollections(BaseModel):
    """The visible ones among those asked about."""

    collection_ids: list[uuid.UUID]
