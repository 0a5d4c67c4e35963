"""Chunk vectors in Qdrant: one Qdrant collection per embedding model and dimension, shared by
every tenant; the tenant id and collection id are in every point's payload (indexed) and in the
filter of every query and deletion (Qdrant's multitenancy guidance).

All-in-one uses qdrant-client's embedded local mode under the data directory; distributed, a
Qdrant server. Measured here, local mode filters payloads in Python (~50 µs a point): fine for
thousands of chunks, while a server's payload index keeps a tenant's search fast at any size.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import AsyncQdrantClient, models

from kibitz.kit.private_files import private_directory

COLLECTION_PREFIX = "kibitz_chunks_"
# Payload fields every query filters on; a server indexes them (is_tenant: stored per tenant).
_TENANT = "tenant_id"
_COLLECTION = "collection_id"
_DOCUMENT = "document_id"


@dataclass(frozen=True)
class ChunkPoint:
    """One chunk to store: its vector and what search answers with."""

    chunk_id: uuid.UUID
    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    text: str
    vector: list[float]


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk found by a search, with its cosine similarity."""

    chunk_id: uuid.UUID
    document_id: uuid.UUID
    collection_id: uuid.UUID
    title: str
    text: str
    score: float


def collection_name(model_id: str, dimensions: int) -> str:
    """The Qdrant collection of one model and dimension, e.g. `kibitz_chunks_all_minilm_…_384`."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    return f"{COLLECTION_PREFIX}{slug}_{dimensions}"


def _tenant_filter(
    tenant_id: uuid.UUID, **fields: uuid.UUID | Sequence[uuid.UUID]
) -> models.Filter:
    conditions: list[models.Condition] = [
        models.FieldCondition(key=_TENANT, match=models.MatchValue(value=str(tenant_id)))
    ]
    for key, value in fields.items():
        match: models.MatchValue | models.MatchAny = (
            models.MatchAny(any=[str(item) for item in value])
            if isinstance(value, (list, tuple))
            else models.MatchValue(value=str(value))
        )
        conditions.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=conditions)


class VectorStore:
    """Stores, searches and deletes chunk vectors, always within one tenant."""

    def __init__(self, client: AsyncQdrantClient, *, embedded: bool) -> None:
        self.client = client
        self.embedded = embedded
        self._ready: set[str] = set()

    @classmethod
    def embedded_under(cls, directory: Path) -> VectorStore:
        """Qdrant's local mode, persisted in `directory` (one process may open it)."""
        # 0700: the points carry people's text; Qdrant writes its files with the umask's mode.
        private_directory(directory)
        return cls(AsyncQdrantClient(path=str(directory)), embedded=True)

    @classmethod
    def server(cls, url: str, api_key: str | None) -> VectorStore:
        """A Qdrant server (distributed mode)."""
        return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=10), embedded=False)

    async def ensure_collection(self, name: str, dimensions: int) -> None:
        """Create the model's collection and its payload indexes once."""
        if name in self._ready:
            return
        if not await self.client.collection_exists(name):
            try:
                await self.client.create_collection(
                    name,
                    vectors_config=models.VectorParams(
                        size=dimensions, distance=models.Distance.COSINE
                    ),
                )
            except Exception:
                # Another replica created it first.
                if not await self.client.collection_exists(name):
                    raise
        if not self.embedded:  # local mode has no payload indexes (and warns about them)
            await self.client.create_payload_index(
                name,
                _TENANT,
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
            )
            for field in (_COLLECTION, _DOCUMENT):
                await self.client.create_payload_index(
                    name, field, models.PayloadSchemaType.KEYWORD
                )
        self._ready.add(name)

    async def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        """Store chunk vectors (the chunk id is the point id, so a retry overwrites)."""
        if not points:
            return
        await self.client.upsert(
            name,
            points=[
                models.PointStruct(
                    id=str(point.chunk_id),
                    vector=point.vector,
                    payload={
                        _TENANT: str(point.tenant_id),
                        _COLLECTION: str(point.collection_id),
                        _DOCUMENT: str(point.document_id),
                        "title": point.title,
                        "text": point.text,
                    },
                )
                for point in points
            ],
            wait=True,
        )

    async def search(
        self,
        name: str,
        vector: list[float],
        *,
        tenant_id: uuid.UUID,
        collection_ids: Sequence[uuid.UUID],
        limit: int,
    ) -> list[ScoredChunk]:
        """The closest chunks of these collections of this tenant, best first."""
        if name not in self._ready or not collection_ids:
            return []
        answer = await self.client.query_points(
            name,
            query=vector,
            query_filter=_tenant_filter(tenant_id, collection_id=list(collection_ids)),
            limit=limit,
            with_payload=True,
        )
        found = []
        for point in answer.points:
            payload = point.payload or {}
            if payload.get(_TENANT) != str(tenant_id):  # belt and braces: never another tenant's
                continue
            found.append(
                ScoredChunk(
                    chunk_id=uuid.UUID(str(point.id)),
                    document_id=uuid.UUID(str(payload[_DOCUMENT])),
                    collection_id=uuid.UUID(str(payload[_COLLECTION])),
                    title=str(payload.get("title", "")),
                    text=str(payload.get("text", "")),
                    score=float(point.score),
                )
            )
        return found

    async def _names(self) -> list[str]:
        answer = await self.client.get_collections()
        return [c.name for c in answer.collections if c.name.startswith(COLLECTION_PREFIX)]

    async def delete_document(self, *, tenant_id: uuid.UUID, document_id: uuid.UUID) -> None:
        """Remove a document's points from every model's collection."""
        await self._delete(_tenant_filter(tenant_id, document_id=document_id))

    async def delete_collection(self, *, tenant_id: uuid.UUID, collection_id: uuid.UUID) -> None:
        """Remove a knowledge collection's points from every model's collection."""
        await self.delete_collections(tenant_id=tenant_id, collection_ids=[collection_id])

    async def delete_collections(
        self, *, tenant_id: uuid.UUID, collection_ids: Sequence[uuid.UUID]
    ) -> None:
        """Remove the points of these knowledge collections from every model's collection."""
        await self._delete(_tenant_filter(tenant_id, collection_id=list(collection_ids)))

    async def _delete(self, selector: models.Filter) -> None:
        for name in await self._names():
            await self.client.delete(
                name, points_selector=models.FilterSelector(filter=selector), wait=True
            )

    async def count(self, *, tenant_id: uuid.UUID, **fields: uuid.UUID) -> int:
        """How many points of this tenant (and document/collection) exist, over every model."""
        total = 0
        for name in await self._names():
            answer = await self.client.count(
                name, count_filter=_tenant_filter(tenant_id, **fields), exact=True
            )
            total += answer.count
        return total

    async def ping(self) -> None:
        """Raise if Qdrant cannot be reached."""
        await self.client.get_collections()

    async def aclose(self) -> None:
        """Close the client (local mode: release the directory's lock)."""
        await self.client.close()
