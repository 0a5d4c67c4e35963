"""Every query of the knowledge service; each takes its tenant (and user) scope as arguments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.services.knowledge.models import (
    Chunk,
    Collection,
    Document,
    DocumentContent,
    DocumentStatus,
    Scope,
)


def _visible(tenant_id: uuid.UUID, user_id: uuid.UUID) -> ColumnElement[bool]:
    """A collection this user may read: their own, or one shared with their tenant."""
    return and_(
        Collection.tenant_id == tenant_id,
        or_(Collection.user_id == user_id, Collection.scope == Scope.TENANT.value),
    )


class KnowledgeRepository:
    """Collections, documents and chunks, always within the caller's tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- collections ------------------------------------------------------------------------

    async def visible_collection(
        self, collection_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> Collection | None:
        """The collection if this user may read it."""
        query = select(Collection).where(
            Collection.id == collection_id, _visible(tenant_id, user_id)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def visible_collection_ids(
        self, collection_ids: Sequence[uuid.UUID], *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> set[uuid.UUID]:
        """Those of the ids this user may read."""
        if not collection_ids:
            return set()
        query = select(Collection.id).where(
            Collection.id.in_(list(collection_ids)), _visible(tenant_id, user_id)
        )
        return set((await self.session.execute(query)).scalars())

    async def list_visible(
        self, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, after: uuid.UUID | None
    ) -> list[Collection]:
        """A page of the collections this user may read, oldest first."""
        query = select(Collection).where(_visible(tenant_id, user_id))
        if after is not None:
            query = query.where(Collection.id > after)
        query = query.order_by(Collection.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def document_counts(self, collection_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many documents each collection holds."""
        if not collection_ids:
            return {}
        query = (
            select(Document.collection_id, func.count())
            .where(Document.collection_id.in_(list(collection_ids)))
            .group_by(Document.collection_id)
        )
        return {row[0]: int(row[1]) for row in await self.session.execute(query)}

    def add(self, row: Collection | Document | DocumentContent) -> None:
        """Stage a new row."""
        self.session.add(row)

    async def delete_collection(self, collection: Collection) -> None:
        """Stage a collection's removal with its documents and chunks."""
        await self._delete_documents_of([collection.id])
        await self.session.delete(collection)

    async def private_collection_ids(
        self, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """The ids of the user's private collections."""
        query = select(Collection.id).where(
            Collection.tenant_id == tenant_id,
            Collection.user_id == user_id,
            Collection.scope == Scope.PRIVATE.value,
        )
        return list((await self.session.execute(query)).scalars())

    async def delete_collections(self, collection_ids: Sequence[uuid.UUID]) -> None:
        """Stage the removal of these collections with their documents and chunks."""
        await self._delete_documents_of(collection_ids)
        await self.session.execute(delete(Collection).where(Collection.id.in_(collection_ids)))

    async def _delete_documents_of(self, collection_ids: Sequence[uuid.UUID]) -> None:
        documents = select(Document.id).where(Document.collection_id.in_(collection_ids))
        await self.session.execute(delete(Chunk).where(Chunk.document_id.in_(documents)))
        await self.session.execute(
            delete(DocumentContent).where(DocumentContent.document_id.in_(documents))
        )
        await self.session.execute(
            delete(Document).where(Document.collection_id.in_(collection_ids))
        )

    # -- documents --------------------------------------------------------------------------

    async def visible_document(
        self, document_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Document, Collection] | None:
        """The document and its collection if this user may read the collection."""
        query = (
            select(Document, Collection)
            .join(Collection, Collection.id == Document.collection_id)
            .where(
                Document.id == document_id,
                Document.tenant_id == tenant_id,
                _visible(tenant_id, user_id),
            )
        )
        row = (await self.session.execute(query)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def list_documents(
        self,
        collection_id: uuid.UUID,
        *,
        tenant_id: uuid.UUID,
        limit: int,
        after: uuid.UUID | None,
    ) -> list[Document]:
        """A page of a collection's documents, oldest first."""
        query = select(Document).where(
            Document.collection_id == collection_id, Document.tenant_id == tenant_id
        )
        if after is not None:
            query = query.where(Document.id > after)
        query = query.order_by(Document.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def tenant_usage(self, tenant_id: uuid.UUID) -> tuple[int, int]:
        """How many documents and bytes the tenant stores (the plan limits count these)."""
        query = select(func.count(), func.coalesce(func.sum(Document.size_bytes), 0)).where(
            Document.tenant_id == tenant_id
        )
        count, size = (await self.session.execute(query)).one()
        return int(count), int(size)

    async def lock_tenant(self, tenant_id: uuid.UUID) -> None:
        """Serialize uploads per tenant so two cannot both pass the limit check (SQLite
        transactions are IMMEDIATE already; PostgreSQL takes an advisory lock)."""
        if self.session.get_bind().dialect.name == "postgresql":
            key = int.from_bytes(tenant_id.bytes[8:], "big", signed=True)
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def delete_document(self, document: Document) -> None:
        """Stage a document's removal with its chunks and bytes."""
        await self.session.execute(delete(Chunk).where(Chunk.document_id == document.id))
        await self.session.execute(
            delete(DocumentContent).where(DocumentContent.document_id == document.id)
        )
        await self.session.delete(document)

    # -- indexing jobs ----------------------------------------------------------------------

    async def next_job_candidate(self, *, now: datetime) -> Document | None:
        """The oldest document waiting for indexing, or whose indexing lease ran out."""
        query = select(Document).where(_claimable(now)).order_by(Document.created_at).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def claim(self, document_id: uuid.UUID, *, now: datetime, lease_until: datetime) -> bool:
        """Take the job if it is still claimable (one replica wins); counts the attempt."""
        result = await self.session.execute(
            update(Document)
            .where(Document.id == document_id, _claimable(now))
            .values(
                status=DocumentStatus.INDEXING.value,
                attempts=Document.attempts + 1,
                lease_until=lease_until,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def renew(self, document_id: uuid.UUID, *, lease_until: datetime) -> bool:
        """Extend the claim while indexing progresses; False when the document is gone."""
        result = await self.session.execute(
            update(Document)
            .where(Document.id == document_id, Document.status == DocumentStatus.INDEXING.value)
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def job(self, document_id: uuid.UUID) -> Document | None:
        """A document by id, for its indexing job (the job carries the tenant)."""
        return await self.session.get(Document, document_id)

    async def content(self, document_id: uuid.UUID) -> bytes | None:
        """The uploaded bytes of a document."""
        row = await self.session.get(DocumentContent, document_id)
        return row.content if row is not None else None

    async def finish_indexed(self, document: Document, chunks: Sequence[Chunk]) -> None:
        """Store the chunks, mark the document indexed and drop its uploaded bytes."""
        await self.session.execute(delete(Chunk).where(Chunk.document_id == document.id))
        self.session.add_all(list(chunks))
        await self.session.execute(
            delete(DocumentContent).where(DocumentContent.document_id == document.id)
        )
        document.status = DocumentStatus.INDEXED.value
        document.chunks = len(chunks)
        document.error = None
        document.lease_until = None

    @staticmethod
    def mark_failed(document: Document, error: str) -> None:
        """The document cannot be indexed; says why."""
        document.status = DocumentStatus.FAILED.value
        document.error = error
        document.lease_until = None

    async def chunks_of_collections(
        self, collection_ids: Sequence[uuid.UUID], *, tenant_id: uuid.UUID
    ) -> list[tuple[Chunk, str]]:
        """Every chunk of these collections with its document's title (keyword search)."""
        query = (
            select(Chunk, Document.title)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.tenant_id == tenant_id, Chunk.collection_id.in_(list(collection_ids)))
        )
        return [(row[0], row[1]) for row in await self.session.execute(query)]


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        Document.status == DocumentStatus.PENDING.value,
        and_(Document.status == DocumentStatus.INDEXING.value, Document.lease_until < now),
    )
