"""The knowledge service as agents uses it: checking that an agent's collections are the
user's to read, and fetching the best chunks for a reply (internal routes, service token)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from kibitz.kit.errors import ProblemError, ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.platform import Platform
from kibitz.services.agents.errors import InvalidAgentConfig, KnowledgeCollectionNotFound
from kibitz.services.agents.metrics import KNOWLEDGE_RETRIEVAL_SECONDS

logger = structlog.get_logger("kibitz.agents.knowledge")


class KnowledgeSources:
    """Asks the knowledge service on a user's behalf."""

    def __init__(
        self, platform: Platform, *, top_k: int, min_score: float, timeout_seconds: float
    ) -> None:
        self.platform = platform
        self.top_k = top_k
        self.min_score = min_score
        self.timeout_seconds = timeout_seconds
        self._client: ServiceClient | None = None

    def _knowledge(self) -> ServiceClient:
        self._client = self._client or self.platform.client("knowledge")
        return self._client

    async def check_visible(
        self, *, tenant_id: uuid.UUID, user_id: uuid.UUID, collection_ids: Sequence[uuid.UUID]
    ) -> None:
        """Every collection is the user's to read and the plan has knowledge, or a problem."""
        if not self.platform.has_service("knowledge"):
            raise InvalidAgentConfig(
                "knowledge_collection_ids", "this deployment has no knowledge service"
            )
        response = await self._knowledge().request(
            "POST",
            "/knowledge/internal/collections/visible",
            json={
                "tenant_id": str(tenant_id),
                "user_id": str(user_id),
                "collection_ids": [str(c) for c in collection_ids],
            },
            timeout=5.0,
        )
        if response.status_code == 403:
            raise _passed_through(response.json(), 403)
        if response.status_code != 200:
            raise ServiceUnavailable("The knowledge service cannot answer right now.")
        visible = {uuid.UUID(str(c)) for c in response.json().get("collection_ids", [])}
        if any(collection_id not in visible for collection_id in collection_ids):
            raise KnowledgeCollectionNotFound()

    async def search(
        self,
        *,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        collection_ids: Sequence[uuid.UUID],
        query: str,
    ) -> list[dict[str, Any]]:
        """The best chunks for the query (at least `min_score` similar), best first; none when
        the search fails or is slow (a reply is never refused because its sources could not be
        fetched)."""
        started = time.perf_counter()
        outcome = "error"
        try:
            response = await self._knowledge().request(
                "POST",
                "/knowledge/internal/search",
                json={
                    "tenant_id": str(tenant_id),
                    "user_id": str(user_id),
                    "collection_ids": [str(c) for c in collection_ids],
                    "query": query[:4000],
                    "top_k": self.top_k,
                },
                timeout=self.timeout_seconds,
            )
            if response.status_code != 200:
                outcome = f"status_{response.status_code}"
                logger.warning("knowledge_search_refused", status=response.status_code)
                return []
            outcome = "ok"
            return [
                {
                    "document_id": item["document_id"],
                    "title": item["title"],
                    "text": item["text"],
                    "score": item["score"],
                }
                for item in response.json().get("items", [])
                if float(item["score"]) >= self.min_score
            ]
        except Exception as exc:  # timeouts, a knowledge service that is down: answer without
            logger.warning("knowledge_search_failed", error=type(exc).__name__)
            return []
        finally:
            KNOWLEDGE_RETRIEVAL_SECONDS.labels(outcome).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        """Close the knowledge client."""
        if self._client is not None:
            await self._client.aclose()


def _passed_through(document: Any, status: int) -> ProblemError:
    """The knowledge service's problem, as it said it (e.g. `feature-not-in-plan`)."""
    body = document if isinstance(document, dict) else {}
    extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}
    return ProblemError(
        str(body.get("detail") or "Not allowed."),
        status=status,
        problem_type=str(body.get("type", "forbidden")).rsplit("/", 1)[-1],
        title=str(body.get("title") or "Forbidden"),
        extra=extra,
    )


def with_sources(instructions: str, citations: Sequence[dict[str, Any]]) -> str:
    """The agent's instructions followed by the numbered sources the reply may cite."""
    if not citations:
        return instructions
    sources = "\n\n".join(
        f"[{number}] {citation['title']}\n{citation['text']}"
        for number, citation in enumerate(citations, start=1)
    )
    guidance = (
        "Answer from the numbered sources below when they are relevant and cite them like [1]. "
        "If they do not contain the answer, say so rather than guessing.\n\nSources:\n\n"
    )
    return f"{instructions}\n\n{guidance}{sources}" if instructions else guidance + sources
