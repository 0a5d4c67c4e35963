"""Agents' domain errors: each carries its status and problem type."""

from __future__ import annotations

from typing import Any

from kibitz.kit.errors import (
    BadGateway,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)


class AgentNotFound(NotFound):
    problem_type, title = "agent-not-found", "Agent Not Found"

    def __init__(self, detail: str = "No such agent.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class PlanLimitReached(Forbidden):
    """The tenant's plan does not allow this; `extra` names the limit, the plan and the upgrade."""

    problem_type, title = "plan-limit", "Plan Limit Reached"

    def __init__(self, detail: str, *, limit: str, plan: str, upgrade_to: str | None) -> None:
        super().__init__(detail, extra={"limit": limit, "plan": plan, "upgrade_to": upgrade_to})


class InvalidAgentConfig(Unprocessable):
    """A field is valid on its own but not with the others (or not on this deployment)."""

    problem_type, title = "invalid-agent", "Invalid Agent"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(
            f"{field}: {message}", extra={"errors": [{"field": field, "message": message}]}
        )


class UnsafeBaseUrl(InvalidAgentConfig):
    """A base_url that is not http(s) or reaches a private, loopback or metadata address."""

    problem_type, title = "unsafe-base-url", "Base URL Not Allowed"

    def __init__(self, message: str) -> None:
        super().__init__("base_url", message)


class ToolsNotSupported(Unprocessable):
    """The agent's provider cannot call tools (the offline `echo` demo)."""

    problem_type, title = "tools-not-supported", "Agent Cannot Call Tools"

    def __init__(self, provider: str) -> None:
        message = (
            f"this agent's provider ({provider}) cannot call tools; "
            "use an openai, anthropic or custom agent"
        )
        super().__init__(
            f"tools: {message}", extra={"errors": [{"field": "tools", "message": message}]}
        )


class InvalidToolMessage(Unprocessable):
    """A message's tool fields do not fit its role or the conversation."""

    problem_type, title = "invalid-tool-message", "Invalid Tool Message"

    def __init__(self, index: int, message: str) -> None:
        field = f"messages.{index}"
        super().__init__(
            f"{field}: {message}", extra={"errors": [{"field": field, "message": message}]}
        )


class ConversationTooLarge(PayloadTooLarge):
    problem_type, title = "conversation-too-large", "Conversation Too Large"


class ProviderRateLimited(ServiceUnavailable):
    problem_type, title = "llm-rate-limited", "Model Provider Busy"


class ProviderUnavailable(BadGateway):
    problem_type, title = "llm-unavailable", "Model Provider Unavailable"


class ProviderRejected(BadGateway):
    problem_type, title = "llm-rejected", "Model Provider Refused The Request"


class ProviderTimedOut(GatewayTimeout):
    problem_type, title = "llm-timeout", "Model Provider Timed Out"


class KnowledgeCollectionNotFound(NotFound):
    problem_type, title = "collection-not-found", "Collection Not Found"

    def __init__(self) -> None:
        super().__init__(
            "knowledge_collection_ids: no such collection (or not yours to read).",
            extra={
                "errors": [{"field": "knowledge_collection_ids", "message": "no such collection"}]
            },
        )
