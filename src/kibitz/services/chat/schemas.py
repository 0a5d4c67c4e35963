"""Request and response shapes of the chat API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kibitz.kit.inputs import MultiLineText, SingleLineText

MessageStatusName = Literal["pending", "streaming", "complete", "failed", "stopped"]


class ChatSend(BaseModel):
    """A user message: to a new chat (`agent_id`) or an existing one (`chat_id`)."""

    model_config = ConfigDict(extra="forbid")

    # Length is checked in the service (413 beyond the cap, 422 when empty).
    content: MultiLineText
    agent_id: uuid.UUID | None = None
    chat_id: uuid.UUID | None = None
    title: SingleLineText | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_target(self) -> ChatSend:
        if (self.agent_id is None) == (self.chat_id is None):
            raise ValueError("give either agent_id (a new chat) or chat_id (an existing one)")
        return self


class ChatUpdate(BaseModel):
    """A rename."""

    model_config = ConfigDict(extra="forbid")

    title: SingleLineText = Field(min_length=1, max_length=200)


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


class ChatRead(BaseModel):
    """A chat."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agent_id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime


class SendResult(BaseModel):
    """What a send answers: the chat, the stored user message and the reply being generated."""

    chat_id: uuid.UUID
    user_message: MessageRead
    agent_message: MessageRead


class HistoryPage(BaseModel):
    """A page of a chat's messages, oldest first; `next_cursor` pages further back."""

    chat: ChatRead
    messages: list[MessageRead]
    next_cursor: str | None


class ChatPage(BaseModel):
    """My chats, newest first."""

    items: list[ChatRead]
    next_cursor: str | None
