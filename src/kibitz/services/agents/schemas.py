"""Request and response shapes of the agents API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ProviderName = Literal["openai", "anthropic", "custom", "echo"]
# Model ids as providers spell them: "gpt-4o-mini", "claude-haiku-4-5", "llama3.1:8b", "org/model".
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"


class AgentCreate(BaseModel):
    """A new agent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    llm_provider: ProviderName
    model: str = Field(min_length=1, max_length=100, pattern=MODEL_PATTERN)
    instructions: str = Field(default="", max_length=8000)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    base_url: str | None = Field(default=None, min_length=1, max_length=2048)
    # Bring your own key: stored encrypted, never returned.
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=512)
    # Knowledge collections each reply searches (the caller's visible ones; plan feature).
    knowledge_collection_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class AgentUpdate(BaseModel):
    """Fields to change; `api_key: null` removes the stored key, `base_url: null` clears it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    llm_provider: ProviderName | None = None
    model: str | None = Field(default=None, min_length=1, max_length=100, pattern=MODEL_PATTERN)
    instructions: str | None = Field(default=None, max_length=8000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    base_url: str | None = Field(default=None, min_length=1, max_length=2048)
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=512)
    knowledge_collection_ids: list[uuid.UUID] | None = Field(default=None, max_length=20)


class AgentRead(BaseModel):
    """An agent as its owner sees it (never the key itself)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    llm_provider: str
    model: str
    instructions: str
    temperature: float
    base_url: str | None
    has_api_key: bool
    knowledge_collection_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime


class AgentCount(BaseModel):
    """How many agents a tenant has (internal)."""

    tenant_id: uuid.UUID
    agents: int


class AgentList(BaseModel):
    """A page of the caller's agents, oldest first."""

    items: list[AgentRead]
    next_cursor: str | None = None


class ConversationMessage(BaseModel):
    """One turn of the conversation to answer."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    # Hard cap per field; the configured (smaller) limits answer 413.
    content: str = Field(max_length=200_000)


class RespondRequest(BaseModel):
    """Ask an agent to answer a conversation."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID
    messages: list[ConversationMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False


class Usage(BaseModel):
    """Tokens the call consumed."""

    input_tokens: int
    output_tokens: int


class Citation(BaseModel):
    """A knowledge source the reply was given (numbered in the prompt in this order)."""

    document_id: uuid.UUID
    title: str
    text: str
    score: float


class RespondResult(BaseModel):
    """A whole (non-streamed) reply."""

    content: str
    usage: Usage
    model: str
    finish_reason: str
    citations: list[Citation] = Field(default_factory=list)


class ModelOption(BaseModel):
    """A model of a provider, its size class, and whether the tenant's plan allows it."""

    id: str
    size: str
    allowed: bool


class ProviderOption(BaseModel):
    """A provider: whether the deployment can serve it, what a user must bring, its models."""

    id: str
    label: str
    demo: bool
    configured: bool
    accepts: list[str]
    any_model: bool
    allowed: bool
    models: list[ModelOption]


class ProviderCatalogue(BaseModel):
    """What this deployment offers and this tenant's plan allows."""

    plan: str
    items: list[ProviderOption]
