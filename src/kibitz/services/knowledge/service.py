"""Business rules of knowledge: who sees which collection, plan gates and limits, uploads,
and search (always within the caller's tenant and visible collections)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from kibitz.kit.db import Database
from kibitz.kit.errors import Unprocessable
from kibitz.kit.jwt import Principal
from kibitz.kit.plans import PlanReader, TenantPlan
from kibitz.services.knowledge.config import KnowledgeSettings
from kibitz.services.knowledge.errors import (
    CollectionNotFound,
    DocumentNotFound,
    EmbeddingsUnavailable,
    KnowledgeLimitReached,
    NotCollectionOwner,
    UnsupportedDocument,
    UploadTooLarge,
)
from kibitz.services.knowledge.ingest.jobs import IndexingWorker
from kibitz.services.knowledge.ingest.parsing import looks_like, media_type_for
from kibitz.services.knowledge.models import Collection, Document, DocumentContent, Scope
from kibitz.services.knowledge.plans import FEATURE, knowledge_limit
from kibitz.services.knowledge.repository import KnowledgeRepository
from kibitz.services.knowledge.retrieval.embeddings import Embedder, EmbeddingError
from kibitz.services.knowledge.retrieval.vectors import ScoredChunk, VectorStore, collection_name
from kibitz.services.knowledge.schemas import CollectionCreate, CollectionUpdate

logger = structlog.get_logger("kibitz.knowledge")


@dataclass
class KnowledgeRuntime:
    """What the service needs besides a session: settings, plans, the model, Qdrant, the worker."""

    settings: KnowledgeSettings
    database: Database
    plans: PlanReader
    embedder: Embedder
    vectors: VectorStore
    worker: IndexingWorker


@dataclass(frozen=True)
class Caller:
    """Whose behalf a request acts on: a user of a tenant (from a token or an internal call)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str = "member"
    bearer_token: str | None = None

    @classmethod
    def of(cls, principal: Principal, bearer_token: str | None) -> Caller:
        """The caller behind an access token."""
        return cls(principal.tenant_id, principal.user_id, principal.role, bearer_token)


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time this service stores is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def collection_read(collection: Collection, documents: int) -> dict[str, Any]:
    """The public view of a collection."""
    return {
        "id": collection.id,
        "tenant_id": collection.tenant_id,
        "user_id": collection.user_id,
        "name": collection.name,
        "description": collection.description,
        "scope": collection.scope,
        "documents": documents,
        "created_at": _utc(collection.created_at),
        "updated_at": _utc(collection.updated_at),
    }


def document_read(document: Document) -> dict[str, Any]:
    """The public view of a document and its indexing status."""
    return {
        "id": document.id,
        "collection_id": document.collection_id,
        "user_id": document.user_id,
        "title": document.title,
        "media_type": document.media_type,
        "size_bytes": document.size_bytes,
        "status": document.status,
        "chunks": document.chunks,
        "error": document.error,
        "created_at": _utc(document.created_at),
        "updated_at": _utc(document.updated_at),
    }


async def require_knowledge(runtime: KnowledgeRuntime, caller: Caller) -> TenantPlan:
    """The tenant's plan, or 403 `feature-not-in-plan` naming the lowest plan that has it."""
    return await runtime.plans.require(caller.tenant_id, FEATURE, bearer_token=caller.bearer_token)


def _page_after(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        return uuid.UUID(cursor)
    except ValueError:
        raise Unprocessable(
            "cursor: not a cursor this API returned",
            extra={"errors": [{"field": "cursor", "message": "not a cursor this API returned"}]},
        ) from None


# -- collections ----------------------------------------------------------------------------


async def create_collection(
    session: AsyncSession, *, caller: Caller, data: CollectionCreate
) -> Collection:
    """A new collection owned by the caller."""
    collection = Collection(
        tenant_id=caller.tenant_id,
        user_id=caller.user_id,
        name=data.name,
        description=data.description,
        scope=data.scope,
    )
    KnowledgeRepository(session).add(collection)
    await session.flush()
    return collection


async def list_collections(
    session: AsyncSession, *, caller: Caller, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the caller's and the tenant's shared collections, with document counts."""
    repository = KnowledgeRepository(session)
    rows = await repository.list_visible(
        tenant_id=caller.tenant_id,
        user_id=caller.user_id,
        limit=limit + 1,
        after=_page_after(cursor),
    )
    page = rows[:limit]
    counts = await repository.document_counts([row.id for row in page])
    next_cursor = str(page[-1].id) if len(rows) > limit else None
    return [collection_read(row, counts.get(row.id, 0)) for row in page], next_cursor


async def visible_collection(
    session: AsyncSession, *, caller: Caller, collection_id: uuid.UUID
) -> Collection:
    """A collection the caller may read, or 404 (also another user's private or another
    tenant's)."""
    collection = await KnowledgeRepository(session).visible_collection(
        collection_id, tenant_id=caller.tenant_id, user_id=caller.user_id
    )
    if collection is None:
        raise CollectionNotFound()
    return collection


def _require_writer(caller: Caller, collection: Collection) -> None:
    """The owner changes a collection; in a shared one, so may the tenant's owners and admins."""
    if collection.user_id != caller.user_id and caller.role not in ("owner", "admin"):
        raise NotCollectionOwner()


async def document_count(session: AsyncSession, collection: Collection) -> int:
    """How many documents a collection holds."""
    counts = await KnowledgeRepository(session).document_counts([collection.id])
    return counts.get(collection.id, 0)


async def update_collection(
    session: AsyncSession, *, caller: Caller, collection: Collection, data: CollectionUpdate
) -> Collection:
    """Rename, describe or re-scope a collection."""
    _require_writer(caller, collection)
    changes = data.model_dump(exclude_unset=True)
    for field in ("name", "scope"):
        if field in changes and changes[field] is None:
            raise Unprocessable(
                f"{field}: may not be null",
                extra={"errors": [{"field": field, "message": "may not be null"}]},
            )
    if collection.user_id != caller.user_id and changes.get("scope") == Scope.PRIVATE.value:
        # Making someone else's shared collection private would hand it to its owner alone.
        raise NotCollectionOwner()
    for field, value in changes.items():
        setattr(collection, field, "" if field == "description" and value is None else value)
    await session.flush()
    return collection


async def delete_collection(
    session: AsyncSession, *, runtime: KnowledgeRuntime, caller: Caller, collection: Collection
) -> None:
    """Remove a collection, its documents, chunks and vectors."""
    _require_writer(caller, collection)
    await KnowledgeRepository(session).delete_collection(collection)
    await session.flush()
    await runtime.vectors.delete_collection(
        tenant_id=collection.tenant_id, collection_id=collection.id
    )


async def erase_account(
    session: AsyncSession, *, runtime: KnowledgeRuntime, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> int:
    """A deleted account's private collections go, with their documents, chunks and vectors
    (collections shared with the tenant stay the tenant's); how many there were. Vectors go
    first: should the rows' removal fail, a redelivery finds the collections again."""
    repository = KnowledgeRepository(session)
    collection_ids = await repository.private_collection_ids(tenant_id=tenant_id, user_id=user_id)
    if collection_ids:
        await runtime.vectors.delete_collections(tenant_id=tenant_id, collection_ids=collection_ids)
        await repository.delete_collections(collection_ids)
        await session.flush()
    return len(collection_ids)


# -- documents ------------------------------------------------------------------------------


async def add_document(
    session: AsyncSession,
    *,
    runtime: KnowledgeRuntime,
    caller: Caller,
    plan: TenantPlan,
    collection: Collection,
    title: str,
    filename: str | None,
    declared_type: str | None,
    content: bytes,
) -> Document:
    """Store an upload as a pending document (its indexing job) within the plan's limits."""
    _require_writer(caller, collection)
    media_type = media_type_for(filename, declared_type)
    if media_type is None:
        raise UnsupportedDocument("Upload a .txt, .md, .html or .pdf file.")
    if not content.strip():
        raise UnsupportedDocument("The file is empty.")
    if not looks_like(content, media_type):
        raise UnsupportedDocument(f"The file is not a {media_type} document.")
    settings = runtime.settings
    if len(content) > settings.max_upload_bytes:
        raise UploadTooLarge(
            f"A document may be at most {settings.max_upload_bytes} bytes.",
            limit="max_upload_bytes",
            allowed=settings.max_upload_bytes,
        )
    repository = KnowledgeRepository(session)
    await repository.lock_tenant(caller.tenant_id)
    count, size = await repository.tenant_usage(caller.tenant_id)
    max_documents = knowledge_limit(plan, "knowledge_documents")
    if count + 1 > max_documents:
        raise KnowledgeLimitReached(
            f"The {plan.plan} plan allows {max_documents} documents.",
            limit="knowledge_documents",
            plan=plan.plan,
            allowed=max_documents,
        )
    max_bytes = knowledge_limit(plan, "knowledge_bytes")
    if size + len(content) > max_bytes:
        raise UploadTooLarge(
            f"The {plan.plan} plan allows {max_bytes} bytes of documents; "
            f"{max(0, max_bytes - size)} are left.",
            limit="knowledge_bytes",
            allowed=max_bytes,
        )
    document = Document(
        tenant_id=caller.tenant_id,
        user_id=caller.user_id,
        collection_id=collection.id,
        title=title[:300],
        media_type=media_type,
        size_bytes=len(content),
    )
    repository.add(document)
    await session.flush()
    repository.add(DocumentContent(document_id=document.id, content=content))
    await session.flush()
    logger.info("document_added", document_id=str(document.id), media_type=media_type)
    return document


async def list_documents(
    session: AsyncSession, *, collection: Collection, limit: int, cursor: str | None
) -> tuple[list[Document], str | None]:
    """A page of a collection's documents with their status."""
    rows = await KnowledgeRepository(session).list_documents(
        collection.id, tenant_id=collection.tenant_id, limit=limit + 1, after=_page_after(cursor)
    )
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def visible_document(
    session: AsyncSession, *, caller: Caller, document_id: uuid.UUID
) -> tuple[Document, Collection]:
    """A document in a collection the caller may read, or 404."""
    found = await KnowledgeRepository(session).visible_document(
        document_id, tenant_id=caller.tenant_id, user_id=caller.user_id
    )
    if found is None:
        raise DocumentNotFound()
    return found


async def delete_document(
    session: AsyncSession,
    *,
    runtime: KnowledgeRuntime,
    caller: Caller,
    document: Document,
    collection: Collection,
) -> None:
    """Remove a document, its chunks and its vectors."""
    if document.user_id != caller.user_id:
        _require_writer(caller, collection)
    await KnowledgeRepository(session).delete_document(document)
    await session.flush()
    await runtime.vectors.delete_document(tenant_id=document.tenant_id, document_id=document.id)


# -- search ---------------------------------------------------------------------------------


async def visible_collection_ids(
    session: AsyncSession, *, caller: Caller, collection_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of the collections the caller may read, in the order asked."""
    visible = await KnowledgeRepository(session).visible_collection_ids(
        collection_ids, tenant_id=caller.tenant_id, user_id=caller.user_id
    )
    return [
        collection_id for collection_id in dict.fromkeys(collection_ids) if collection_id in visible
    ]


async def search(
    *,
    runtime: KnowledgeRuntime,
    caller: Caller,
    query: str,
    collection_ids: Sequence[uuid.UUID],
    top_k: int,
) -> list[ScoredChunk]:
    """The best chunks of these collections for the query; 404 if any is not readable."""
    async with runtime.database.transaction() as session:
        visible = await visible_collection_ids(
            session, caller=caller, collection_ids=collection_ids
        )
    if len(visible) != len(set(collection_ids)):
        raise CollectionNotFound("No such collection (or not yours to read).")
    embedder = runtime.embedder
    try:
        vector = await embedder.embed_query(query)
        name = collection_name(embedder.model_id, await embedder.dimensions())
    except EmbeddingError as exc:
        raise EmbeddingsUnavailable(str(exc)) from None
    await runtime.vectors.ensure_collection(name, len(vector))
    return await runtime.vectors.search(
        name, vector, tenant_id=caller.tenant_id, collection_ids=visible, limit=top_k
    )


def hit_read(hit: ScoredChunk) -> dict[str, Any]:
    """The public view of a search hit."""
    return {
        "document_id": hit.document_id,
        "collection_id": hit.collection_id,
        "title": hit.title,
        "chunk_id": hit.chunk_id,
        "text": hit.text,
        "score": round(hit.score, 4),
    }
