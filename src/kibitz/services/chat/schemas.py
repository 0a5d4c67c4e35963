"""Request and response shapes of the chat API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kibitz.kit.inputs import MultiLineText, SingleLineText

MessageStatusName = Literal["pending", "streaming", "complete", "failed", "stopped"]
# direct: the default agent (or the @mentioned ones) answers; panel: every participant in turn;
# orchestrated: the first agent consults the others.
ChatMode = Literal["direct", "panel", "orchestrated"]
# 1 to 8 agents take part in a chat.
MAX_PARTICIPANTS = 8
AgentIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_PARTICIPANTS)]


def _distinct(agent_ids: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
    if agent_ids is not None and len(set(agent_ids)) != len(agent_ids):
        raise ValueError("an agent takes part in a chat once")
    return agent_ids


class ChatSend(BaseModel):
    """A user message: to a new chat (`agent_id`, or `agent_ids` and a `mode`) or an existing one
    (`chat_id`)."""

    model_config = ConfigDict(extra="forbid")

    # Length is checked in the service (413 beyond the cap, 422 when empty).
    content: MultiLineText
    agent_id: uuid.UUID | None = None
    agent_ids: AgentIds | None = None
    mode: ChatMode | None = None
    chat_id: uuid.UUID | None = None
    title: SingleLineText | None = Field(default=None, min_length=1, max_length=200)
    # Answer from this message on (an earlier point of the conversation) instead of after the
    # newest leaf; a message of `chat_id`.
    parent_message_id: uuid.UUID | None = None

    _distinct_agents = field_validator("agent_ids")(_distinct)

    @model_validator(mode="after")
    def _one_target(self) -> ChatSend:
        targets = [self.agent_id, self.agent_ids, self.chat_id]
        if sum(target is not None for target in targets) != 1:
            raise ValueError(
                "give one of agent_id or agent_ids (a new chat) or chat_id (an existing one)"
            )
        if self.mode is not None and self.chat_id is not None:
            raise ValueError("mode is set for a new chat (PATCH /chat/chats/{id} changes it)")
        if self.parent_message_id is not None and self.chat_id is None:
            raise ValueError("parent_message_id is a message of chat_id")
        return self

    @property
    def participants(self) -> list[uuid.UUID]:
        """A new chat's agents, the default first (empty for an existing chat)."""
        if self.agent_ids is not None:
            return list(self.agent_ids)
        return [self.agent_id] if self.agent_id is not None else []


class ChatCreate(BaseModel):
    """A new chat with its participants, before any message."""

    model_config = ConfigDict(extra="forbid")

    agent_ids: AgentIds
    mode: ChatMode = "direct"
    title: SingleLineText | None = Field(default=None, min_length=1, max_length=200)

    _distinct_agents = field_validator("agent_ids")(_distinct)


class ChatUpdate(BaseModel):
    """A rename, new participants or a new mode (any of them)."""

    model_config = ConfigDict(extra="forbid")

    title: SingleLineText | None = Field(default=None, min_length=1, max_length=200)
    agent_ids: AgentIds | None = None
    mode: ChatMode | None = None

    _distinct_agents = field_validator("agent_ids")(_distinct)

    @model_validator(mode="after")
    def _something(self) -> ChatUpdate:
        if self.title is None and self.agent_ids is None and self.mode is None:
            raise ValueError("give title, agent_ids or mode")
        return self


class Citation(BaseModel):
    """A knowledge source an agent's reply was given (numbered [1], [2]… in that order)."""

    document_id: uuid.UUID
    title: str
    text: str
    score: float


class MessageRead(BaseModel):
    """One message of a chat."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    chat_id: uuid.UUID
    sender: Literal["user", "agent"]
    # The agent that wrote a reply; null for the user's messages.
    agent_id: uuid.UUID | None = None
    # The message this one follows (null for the chat's first message and its edits); for a
    # delegated answer, the orchestrator's reply.
    parent_id: uuid.UUID | None = None
    # An answer an orchestrator asked for (a child of its reply, not a step of the branch).
    delegated: bool = False
    content: str
    status: MessageStatusName
    input_tokens: int
    output_tokens: int
    model: str | None
    finish_reason: str | None
    error: str | None
    # Empty unless the agent answered from knowledge collections.
    citations: list[Citation] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    @field_validator("citations", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    @field_validator("delegated", mode="before")
    @classmethod
    def _none_is_not_delegated(cls, value: object) -> object:
        # A row not yet flushed has no server default yet.
        return False if value is None else value


class ChatRead(BaseModel):
    """A chat."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    # The default agent (the first of `agent_ids`).
    agent_id: uuid.UUID
    agent_ids: list[uuid.UUID]
    mode: ChatMode
    title: str
    created_at: datetime
    updated_at: datetime


class SendResult(BaseModel):
    """What a send answers: the chat, the stored user message and the reply being generated."""

    chat_id: uuid.UUID
    user_message: MessageRead
    agent_message: MessageRead
    # Every reply this send starts, in order (`agent_message` is the first).
    agent_messages: list[MessageRead]


class BranchMessage(MessageRead):
    """A message of a branch, with its alternatives."""

    # Every message with the same parent, itself included, oldest first (the 2/3 arrows).
    sibling_ids: list[uuid.UUID]


class HistoryPage(BaseModel):
    """A page of one branch of the chat (root → leaf), oldest first; `next_cursor` pages further
    back (towards the root)."""

    chat: ChatRead
    messages: list[BranchMessage]
    next_cursor: str | None


class ReplyResult(BaseModel):
    """What a regeneration answers: the chat and the new reply being generated beside the old."""

    chat_id: uuid.UUID
    agent_message: MessageRead
    agent_messages: list[MessageRead]


class MessageEdit(BaseModel):
    """A user message's new wording: stored beside the old one and answered anew."""

    model_config = ConfigDict(extra="forbid")

    # Length is checked in the service (413 beyond the cap, 422 when empty).
    content: MultiLineText


class Regeneration(BaseModel):
    """Another reply in place of an agent's: by the same agent, or another participant."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID | None = None


class ChatPage(BaseModel):
    """My chats, newest first."""

    items: list[ChatRead]
    next_cursor: str | None
