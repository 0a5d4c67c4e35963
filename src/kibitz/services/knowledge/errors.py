"""Domain errors of the knowledge service, each with its status and problem type."""

from __future__ import annotations

from typing import Any

from kibitz.kit.errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    Unprocessable,
)


class CollectionNotFound(NotFound):
    problem_type, title = "collection-not-found", "Collection Not Found"

    def __init__(self, detail: str = "No such collection.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class DocumentNotFound(NotFound):
    problem_type, title = "document-not-found", "Document Not Found"

    def __init__(self, detail: str = "No such document.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class NotCollectionOwner(Forbidden):
    problem_type, title = "not-collection-owner", "Not The Collection's Owner"

    def __init__(self) -> None:
        super().__init__(
            "Only the collection's owner or a tenant admin may change a shared collection."
        )


class KnowledgeLimitReached(Forbidden):
    """The tenant's plan allows no more documents or bytes; names the limit."""

    problem_type, title = "plan-limit", "Plan Limit Reached"

    def __init__(self, detail: str, *, limit: str, plan: str, allowed: int) -> None:
        super().__init__(detail, extra={"limit": limit, "plan": plan, "allowed": allowed})


class UploadTooLarge(PayloadTooLarge):
    problem_type, title = "document-too-large", "Document Too Large"

    def __init__(self, detail: str, *, limit: str, allowed: int) -> None:
        super().__init__(detail, extra={"limit": limit, "allowed": allowed})


class UnsupportedDocument(Unprocessable):
    problem_type, title = "unsupported-document", "Unsupported Document"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"errors": [{"field": "file", "message": detail}]})


class EmbeddingsUnavailable(ServiceUnavailable):
    problem_type, title = "embeddings-unavailable", "Embeddings Unavailable"


class VectorStoreUnavailable(ServiceUnavailable):
    problem_type, title = "vector-store-unavailable", "Vector Store Unavailable"


def is_problem(error: BaseException) -> bool:
    """Whether an error is one a client may see as it is."""
    return isinstance(error, ProblemError)
