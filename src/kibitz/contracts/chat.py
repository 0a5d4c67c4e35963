"""Chat's internal routes: what other services send it."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

# As chat's own limit on a message (the agents service refuses longer ones before this).
_MAX_TEXT = 200_000


class StoredTurn(BaseModel):
    """One message of a kept completion; its id is chosen by the sender, once per completion."""

    id: uuid.UUID
    sender: Literal["user", "agent"]
    content: Annotated[str, Field(max_length=_MAX_TEXT)]


class StoreCompletion(BaseModel):
    """An OpenAI-compatible completion kept as a chat (`store: true`): the turns are stored
    once (a retry with the same ids stores nothing more), the last one being the agent's reply.

    `new_chat`: create the chat with `chat_id` (the agents service chose it); otherwise it must
    be an existing chat of this user in this tenant (404 when it is not).
    """

    completion_id: Annotated[str, Field(min_length=1, max_length=100)]
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    chat_id: uuid.UUID
    new_chat: bool
    turns: Annotated[list[StoredTurn], Field(min_length=1, max_length=1000)]
    model: Annotated[str, Field(max_length=200)] | None = None
    finish_reason: Annotated[str, Field(max_length=50)] | None = None
    input_tokens: Annotated[int, Field(ge=0)] = 0
    output_tokens: Annotated[int, Field(ge=0)] = 0


class StoredCompletion(BaseModel):
    """The chat the completion is kept in, and how many of its turns this call stored."""

    chat_id: uuid.UUID
    stored: int
