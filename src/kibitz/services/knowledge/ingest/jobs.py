"""Indexing jobs: each document row is its own job. A worker claims the oldest pending one with
a lease (an UPDATE only one replica wins), parses, chunks, embeds and stores it, renewing the
lease as it goes. A process that dies mid-job leaves a lease that runs out: the next worker
(after a restart, or another replica) takes the job again, until `job_max_attempts`, after which
the document is `failed` with the reason. So no document stays `pending` or `indexing` for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from kibitz.kit.db import Database
from kibitz.services.knowledge.config import KnowledgeSettings
from kibitz.services.knowledge.ingest.chunking import chunk_text
from kibitz.services.knowledge.ingest.parsing import UnreadableDocument, extract_text
from kibitz.services.knowledge.models import Chunk, Document
from kibitz.services.knowledge.repository import KnowledgeRepository
from kibitz.services.knowledge.retrieval.embeddings import Embedder, EmbeddingError
from kibitz.services.knowledge.retrieval.vectors import ChunkPoint, VectorStore, collection_name

logger = structlog.get_logger("kibitz.knowledge.indexing")


class DocumentGone(Exception):
    """The document was deleted while it was being indexed."""


class IndexingWorker:
    """Claims and runs indexing jobs in the background, one at a time per process."""

    def __init__(
        self,
        *,
        database: Database,
        settings: KnowledgeSettings,
        embedder: Embedder,
        vectors: VectorStore,
    ) -> None:
        self.database = database
        self.settings = settings
        self.embedder = embedder
        self.vectors = vectors
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin taking jobs (the lifespan calls this)."""
        self._task = asyncio.create_task(self._run(), name="knowledge-indexing")

    def wake(self) -> None:
        """A job was added: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking jobs; a job cut short is taken again once its lease runs out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except Exception:
                logger.exception("indexing_loop_failed")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_seconds)
                self._wake.clear()

    def _lease(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.settings.job_lease_seconds)

    async def run_once(self) -> bool:
        """Claim and run one job; False when there was none."""
        document_id = await self._claim()
        if document_id is None:
            return False
        job: _JobInfo | None = None
        try:
            job, content = await self._load(document_id)
            await self._index_content(job, content)
        except DocumentGone:
            if job is not None:  # deleted meanwhile: its points go too
                await self.vectors.delete_document(
                    tenant_id=job.tenant_id, document_id=job.document_id
                )
        except UnreadableDocument as exc:
            await self._fail(document_id, job, str(exc))
        except EmbeddingError as exc:
            logger.warning("indexing_embedding_failed", document_id=str(document_id))
            await self._fail(document_id, job, f"Embedding failed: {exc}.")
        except Exception:
            logger.exception("indexing_failed", document_id=str(document_id))
            await self._fail(document_id, job, "Indexing failed unexpectedly.")
        return True

    async def _claim(self) -> uuid.UUID | None:
        now = datetime.now(UTC)
        async with self.database.transaction() as session:
            repository = KnowledgeRepository(session)
            candidate = await repository.next_job_candidate(now=now)
            if candidate is None:
                return None
            if candidate.attempts >= self.settings.job_max_attempts:
                # Its earlier attempts died with their process (a crash, a restart).
                repository.mark_failed(
                    candidate,
                    "Indexing was interrupted too many times; upload the document again.",
                )
                logger.warning("indexing_gave_up", document_id=str(candidate.id))
                return None
            if not await repository.claim(candidate.id, now=now, lease_until=self._lease()):
                return None  # another replica took it
            return candidate.id

    async def _load(self, document_id: uuid.UUID) -> tuple[_JobInfo, bytes]:
        async with self.database.transaction() as session:
            repository = KnowledgeRepository(session)
            document = await repository.job(document_id)
            if document is None:
                raise DocumentGone()
            content = await repository.content(document_id)
            if content is None:
                raise UnreadableDocument("The uploaded file is no longer stored.")
            return _JobInfo.of(document), content

    async def _index_content(self, job: _JobInfo, content: bytes) -> None:
        text = await asyncio.to_thread(extract_text, content, job.media_type)
        if len(text) > self.settings.max_document_chars:
            raise UnreadableDocument(
                f"The document has more than {self.settings.max_document_chars} characters of text."
            )
        pieces = chunk_text(
            text,
            max_chars=self.settings.chunk_chars,
            overlap_chars=self.settings.chunk_overlap_chars,
        )
        if not pieces:
            raise UnreadableDocument("The document contains no text.")
        name = collection_name(self.embedder.model_id, await self.embedder.dimensions())
        await self.vectors.ensure_collection(name, await self.embedder.dimensions())
        chunks = [
            Chunk(
                id=uuid.uuid4(),
                tenant_id=job.tenant_id,
                collection_id=job.collection_id,
                document_id=job.document_id,
                ordinal=ordinal,
                text=piece,
            )
            for ordinal, piece in enumerate(pieces)
        ]
        batch = self.settings.embedding_batch
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            # The title is part of what a chunk is about ("Refund policy" + its paragraph).
            vectors = await self.embedder.embed_documents(
                [f"{job.title}\n{chunk.text}" for chunk in part]
            )
            await self.vectors.upsert(
                name,
                [
                    ChunkPoint(
                        chunk_id=chunk.id,
                        tenant_id=job.tenant_id,
                        collection_id=job.collection_id,
                        document_id=job.document_id,
                        title=job.title,
                        text=chunk.text,
                        vector=vector,
                    )
                    for chunk, vector in zip(part, vectors, strict=True)
                ],
            )
            await self._renew(job.document_id)
        async with self.database.transaction() as session:
            repository = KnowledgeRepository(session)
            document = await repository.job(job.document_id)
            if document is None:
                raise DocumentGone()
            await repository.finish_indexed(document, chunks)
        logger.info("document_indexed", document_id=str(job.document_id), chunks=len(chunks))

    async def _renew(self, document_id: uuid.UUID) -> None:
        async with self.database.transaction() as session:
            if not await KnowledgeRepository(session).renew(document_id, lease_until=self._lease()):
                raise DocumentGone()

    async def _fail(self, document_id: uuid.UUID, job: _JobInfo | None, error: str) -> None:
        async with self.database.transaction() as session:
            document = await KnowledgeRepository(session).job(document_id)
            if document is not None:
                KnowledgeRepository.mark_failed(document, error)
        if job is not None:  # points of a half-indexed document must never be found
            await self.vectors.delete_document(tenant_id=job.tenant_id, document_id=document_id)
        logger.info("document_failed", document_id=str(document_id), error=error)


@dataclass(frozen=True)
class _JobInfo:
    document_id: uuid.UUID
    tenant_id: uuid.UUID
    collection_id: uuid.UUID
    title: str
    media_type: str

    @classmethod
    def of(cls, document: Document) -> _JobInfo:
        return cls(
            document_id=document.id,
            tenant_id=document.tenant_id,
            collection_id=document.collection_id,
            title=document.title,
            media_type=document.media_type,
        )
