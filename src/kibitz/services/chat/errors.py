"""Chat's domain errors: each carries its status and problem type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kibitz.kit.errors import NotFound, PayloadTooLarge, TooManyRequests, Unprocessable


class ChatNotFound(NotFound):
    problem_type, title = "chat-not-found", "Chat Not Found"

    def __init__(self, detail: str = "No such chat.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class MessageNotFound(NotFound):
    problem_type, title = "message-not-found", "Message Not Found"

    def __init__(self, detail: str = "No such message.", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class ContentTooLarge(PayloadTooLarge):
    problem_type, title = "content-too-large", "Message Too Large"


class IdempotencyKeyReused(Unprocessable):
    problem_type, title = "idempotency-key-reused", "Idempotency-Key Reused"


class TooManyGenerations(TooManyRequests):
    problem_type, title = "too-many-generations", "Too Many Replies In Progress"


class MentionNotResolved(Unprocessable):
    """An `@Name` that names no participant, or several (422, naming the choices)."""

    problem_type, title = "mention-not-resolved", "Mention Not Resolved"

    def __init__(self, mention: str, *, reason: str, choices: Sequence[str]) -> None:
        listed = ", ".join(f"@{choice}" for choice in choices)
        super().__init__(
            f"@{mention} is {reason} in this chat; choose one of {listed}.",
            extra={"mention": mention, "reason": reason, "choices": list(choices)},
        )


class OrchestratorCannotCallTools(Unprocessable):
    """An orchestrated chat whose first agent cannot call tools (the offline `echo` demo)."""

    problem_type, title = "orchestrator-cannot-call-tools", "Orchestrator Cannot Call Tools"

    def __init__(self, name: str, provider: str) -> None:
        message = (
            f"the orchestrator (the first agent, {name}) uses {provider}, which cannot call "
            "tools; put an openai, anthropic or custom agent first, or choose another mode"
        )
        super().__init__(
            f"agent_ids: {message}.", extra={"errors": [{"field": "agent_ids", "message": message}]}
        )


class OrchestratorSwitchedToNoTools(Unprocessable):
    """A send to an orchestrated chat whose orchestrator was switched to a provider that cannot
    call tools after the chat was made (nothing is stored)."""

    problem_type, title = (
        OrchestratorCannotCallTools.problem_type,
        OrchestratorCannotCallTools.title,
    )

    def __init__(self, name: str, provider: str, *, agent_id: str) -> None:
        super().__init__(
            f"This chat's orchestrator, {name}, now uses {provider}, which cannot call tools: "
            f"switch {name} back to an openai, anthropic or custom model, put another agent "
            "first, or change the chat's mode.",
            extra={"agent_id": agent_id, "agent_name": name, "provider": provider},
        )
