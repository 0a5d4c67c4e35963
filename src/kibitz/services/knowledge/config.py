"""Settings of the knowledge service (`KIBITZ_KNOWLEDGE_…`)."""

from __future__ import annotations

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import SettingsConfigDict

from kibitz.kit.settings import ServiceSettings

# The plan catalogue's knowledge limits, used only when this deployment has no tenants service.
DEFAULT_LIMITS: dict[str, int] = {"knowledge_documents": 200, "knowledge_bytes": 50_000_000}


class KnowledgeSettings(ServiceSettings):
    """What an operator may tune about the knowledge service."""

    model_config = SettingsConfigDict(env_prefix="KIBITZ_KNOWLEDGE_", extra="ignore")

    # Unset: Qdrant's embedded local mode under `<data dir>/qdrant` (all-in-one).
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    # Unset: the local ONNX model shipped in a package. Set: any OpenAI-compatible
    # `/embeddings` endpoint through the official SDK.
    embeddings_base_url: str | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_model: str = "text-embedding-3-small"
    # Threads the local model may use. 1: indexing never takes both cores from the replies.
    embedding_threads: PositiveInt = 1
    # Chunks embedded per call while indexing (bounded memory, steady progress).
    embedding_batch: PositiveInt = 16

    # Characters per chunk (~200 word pieces: the local model reads at most 256) and how many
    # characters of the previous chunk a chunk repeats, so a sentence cut at a border is found.
    chunk_chars: PositiveInt = 900
    chunk_overlap_chars: NonNegativeInt = 150

    # One upload, bytes. The plan bounds a tenant's documents and bytes in total.
    max_upload_bytes: PositiveInt = 10_000_000
    # Characters of text one document may yield (a huge PDF is refused, not half-indexed).
    max_document_chars: PositiveInt = 2_000_000
    # Indexing jobs: how long a claimed job stays claimed without progress (s), and how many
    # times a job is tried before the document is `failed` (a crash mid-indexing retries it).
    job_lease_seconds: PositiveFloat = 120.0
    job_max_attempts: PositiveInt = 2
    # How often idle workers look for jobs another replica (or a restart) left behind (s).
    job_poll_seconds: PositiveFloat = 2.0
    # How long a tenant's plan is reused (s; 0: read it on every request).
    plan_cache_seconds: NonNegativeFloat = 5.0
