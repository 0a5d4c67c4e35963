"""A reply job's order: everything its generator needs, on any chat process."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The work queue's kind for replies.
REPLY_JOB = "chat.reply"
_IDS = ("message_id", "user_message_id", "chat_id", "tenant_id", "user_id", "agent_id")


@dataclass(frozen=True)
class TurnStep:
    """A later reply of the same turn: stored `pending` with the send, started when the reply
    before it ends (`turns/chain.py`)."""

    message_id: uuid.UUID
    agent_id: uuid.UUID
    # The agent's name: it labels its answer in the context of the agents after it.
    name: str

    def to_payload(self) -> dict[str, str]:
        """JSON-ready."""
        return {
            "message_id": str(self.message_id),
            "agent_id": str(self.agent_id),
            "name": self.name,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TurnStep:
        """Read it back."""
        return cls(
            message_id=uuid.UUID(str(payload["message_id"])),
            agent_id=uuid.UUID(str(payload["agent_id"])),
            name=str(payload.get("name") or ""),
        )


@dataclass(frozen=True)
class ReplyOrder:
    """One reply to generate: whose, in which chat, by which agent, from which context."""

    message_id: uuid.UUID
    user_message_id: uuid.UUID
    chat_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    context: list[dict[str, Any]]
    # No access token: the generator asks agents with chat's service credential, acting for
    # `user_id` in `tenant_id` (a token stored here would outlive neither its 15 min nor a
    # logout, and a job may run later than either).
    request_id: str | None
    # When the reply was stored (its events show it).
    created_at: datetime
    # An orchestrating reply: the participants it may consult through tool calls (none
    # otherwise), and how deep in its turn a reply is (0: it answers the user; 1: a delegate).
    delegates: tuple[uuid.UUID, ...] = ()
    depth: int = 0
    # The message the reply answers (its place in the chat's tree; its events show it); for a
    # delegated answer, the orchestrator's reply that asked for it.
    parent_id: uuid.UUID | None = None

    @property
    def delegated(self) -> bool:
        """Whether this is an answer to an orchestrator (not to the user)."""
        return self.depth > 0

    # A turn of several agents: this agent's name and the replies after it, in order.
    name: str = ""
    rest: tuple[TurnStep, ...] = field(default=())

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready (the job row's payload and the queued job's)."""
        # Field by field: `asdict` would deep-copy the context (every send's whole branch).
        data: dict[str, Any] = {name: str(getattr(self, name)) for name in _IDS}
        data.update(
            context=self.context,
            request_id=self.request_id,
            created_at=self.created_at.isoformat(),
            delegates=[str(agent_id) for agent_id in self.delegates],
            depth=self.depth,
            parent_id=str(self.parent_id) if self.parent_id else None,
            name=self.name,
            rest=[step.to_payload() for step in self.rest],
        )
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ReplyOrder:
        """Read it back."""
        values = {name: uuid.UUID(str(payload[name])) for name in _IDS}
        return cls(
            **values,
            context=list(payload.get("context") or []),
            request_id=payload.get("request_id"),
            created_at=datetime.fromisoformat(str(payload["created_at"])),
            delegates=tuple(uuid.UUID(str(value)) for value in payload.get("delegates") or ()),
            depth=int(payload.get("depth") or 0),
            parent_id=uuid.UUID(str(payload["parent_id"])) if payload.get("parent_id") else None,
            name=str(payload.get("name") or ""),
            rest=tuple(TurnStep.from_payload(step) for step in payload.get("rest") or ()),
        )


def new_holder() -> str:
    """A lease token: whoever presents it holds the job."""
    return secrets.token_hex(16)
