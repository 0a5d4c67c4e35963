"""The knowledge module: its app, migrations, embedding model, Qdrant and indexing worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from kibitz.kit.app import create_service_app
from kibitz.kit.db import Database
from kibitz.kit.db.migrations import ServiceSchema
from kibitz.kit.platform import Module, Platform
from kibitz.kit.service_gauges import ServiceGauges
from kibitz.services.knowledge import events
from kibitz.services.knowledge.api import MULTIPART_OVERHEAD_BYTES, internal, router, uploads
from kibitz.services.knowledge.config import KnowledgeSettings
from kibitz.services.knowledge.ingest.jobs import IndexingWorker
from kibitz.services.knowledge.plans import plan_reader
from kibitz.services.knowledge.retrieval.embeddings import Embedder, LocalEmbedder, OpenAIEmbedder
from kibitz.services.knowledge.retrieval.vectors import VectorStore
from kibitz.services.knowledge.service import KnowledgeRuntime

NAME = "knowledge"
SCHEMA = ServiceSchema(NAME, Path(__file__).parent / "migrations")


async def migrate(platform: Platform) -> None:
    """Apply the knowledge migrations."""
    await SCHEMA.upgrade(SCHEMA.database_url(platform, KnowledgeSettings()))


def embedder_for(settings: KnowledgeSettings) -> Embedder:
    """The configured OpenAI-compatible endpoint, else the local model."""
    if settings.embeddings_base_url:
        key = settings.embeddings_api_key
        return OpenAIEmbedder(
            base_url=settings.embeddings_base_url,
            api_key=key.get_secret_value() if key else None,
            model=settings.embeddings_model,
        )
    return LocalEmbedder(threads=settings.embedding_threads)


def vector_store_for(platform: Platform, settings: KnowledgeSettings) -> VectorStore:
    """A Qdrant server when configured, else Qdrant's local mode under the data directory."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key
        return VectorStore.server(settings.qdrant_url, key.get_secret_value() if key else None)
    return VectorStore.embedded_under(platform.settings.data_dir / "qdrant")


def create_app(platform: Platform) -> FastAPI:
    """The knowledge app."""
    settings = KnowledgeSettings()
    database = Database(SCHEMA.database_url(platform, settings), pool=settings.database_pool())
    embedder = embedder_for(settings)
    runtime: KnowledgeRuntime | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal runtime
        if platform.settings.migrate_on_start:
            await migrate(platform)
        # Opened here, not at build time: local mode locks its directory for this process.
        vectors = vector_store_for(platform, settings)
        worker = IndexingWorker(
            database=database, settings=settings, embedder=embedder, vectors=vectors
        )
        runtime = KnowledgeRuntime(
            settings=settings,
            database=database,
            plans=plan_reader(platform, cache_seconds=settings.plan_cache_seconds),
            embedder=embedder,
            vectors=vectors,
            worker=worker,
        )
        app.state.knowledge = runtime
        if isinstance(embedder, LocalEmbedder):
            await embedder.load()  # the first search must not pay for it
        # Documents left pending or mid-indexing by a previous run are taken up from here.
        worker.start()
        deletions = await events.subscribe(platform.bus, runtime=runtime)
        try:
            yield
        finally:
            await deletions.cancel()
            await worker.stop()
            await runtime.plans.aclose()
            await embedder.aclose()
            await vectors.aclose()
            await database.dispose()

    async def vectors_reachable() -> None:
        if runtime is not None:
            await runtime.vectors.ping()

    app = create_service_app(
        name=NAME,
        platform=platform,
        routers=[router, internal],
        lifespan=lifespan,
        readiness_checks={"database": database.ping, "qdrant": vectors_reachable},
        gauges=ServiceGauges(NAME, database, dependencies={"qdrant": vectors_reachable}),
        description="Document collections, embeddings and vector search (RAG).",
    )
    # A document's route takes bodies as large as the setting allows, framing included.
    app.include_router(uploads, max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES)
    app.state.database = database
    return app


module = Module(
    name=NAME,
    create_app=create_app,
    depends_on=("auth",),
    migrate=migrate,
    publishes_events=False,
)
