"""Request and response shapes of the agents API."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kibitz.kit.inputs import MultiLineText, SingleLineText, StrictFloat

ProviderName = Literal["openai", "anthropic", "custom", "echo"]
# Model ids as providers spell them: "gpt-4o-mini", "claude-haiku-4-5", "llama3.1:8b", "org/model".
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
# What both OpenAI and Anthropic accept as a tool's name.
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
TOOL_CALL_ID_PATTERN = r"^[a-zA-Z0-9_-]{1,128}$"
MAX_TOOLS = 16
MAX_TOOL_CALLS = 16
MAX_TOOL_SCHEMA_BYTES = 16_384
MAX_TOOL_ARGUMENTS_BYTES = 32_768


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


class AgentCreate(BaseModel):
    """A new agent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLineText = Field(min_length=1, max_length=100)
    llm_provider: ProviderName
    model: str = Field(min_length=1, max_length=100, pattern=MODEL_PATTERN)
    instructions: MultiLineText = Field(default="", max_length=8000)
    temperature: StrictFloat = Field(default=0.7, ge=0.0, le=2.0)
    base_url: str | None = Field(default=None, min_length=1, max_length=2048)
    # Bring your own key: stored encrypted, never returned.
    api_key: SecretStr | None = Field(default=None, min_length=1, max_length=512)
    # Knowledge collections each reply searches (the caller's visible ones; plan feature).
    knowledge_collection_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class AgentUpdate(BaseModel):
    """Fields to change; `api_key: null` removes the stored key, `base_url: null` clears it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: SingleLineText | None = Field(default=None, min_length=1, max_length=100)
    llm_provider: ProviderName | None = None
    model: str | None = Field(default=None, min_length=1, max_length=100, pattern=MODEL_PATTERN)
    instructions: MultiLineText | None = Field(default=None, max_length=8000)
    temperature: StrictFloat | None = Field(default=None, ge=0.0, le=2.0)
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


class ToolDefinition(BaseModel):
    """A tool the model may call; `parameters` is the JSON schema of its arguments (an object)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: MultiLineText = Field(default="", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        if parameters.get("type") != "object":
            raise ValueError('must be a JSON schema with "type": "object"')
        if _json_size(parameters) > MAX_TOOL_SCHEMA_BYTES:
            raise ValueError(f"at most {MAX_TOOL_SCHEMA_BYTES} bytes of JSON")
        return parameters


class ToolCallSchema(BaseModel):
    """A tool call of the model: which tool, with what arguments (a JSON object)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=TOOL_CALL_ID_PATTERN)
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: dict[str, Any]

    @field_validator("arguments")
    @classmethod
    def _bounded(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        if _json_size(arguments) > MAX_TOOL_ARGUMENTS_BYTES:
            raise ValueError(f"at most {MAX_TOOL_ARGUMENTS_BYTES} bytes of JSON")
        return arguments


class ConversationMessage(BaseModel):
    """One turn of the conversation to answer. An assistant turn may carry the `tool_calls` the
    model made; a `tool` turn is one call's result (`tool_call_id`, the result in `content`)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "tool"]
    # Hard cap per field; the configured (smaller) limits answer 413.
    content: str = Field(max_length=200_000)
    tool_calls: list[ToolCallSchema] | None = Field(default=None, max_length=MAX_TOOL_CALLS)
    tool_call_id: str | None = Field(default=None, pattern=TOOL_CALL_ID_PATTERN)


class RespondRequest(BaseModel):
    """Ask an agent to answer a conversation, optionally offering it `tools` to call."""

    model_config = ConfigDict(extra="forbid")

    agent_id: uuid.UUID
    messages: list[ConversationMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    tools: list[ToolDefinition] | None = Field(default=None, max_length=MAX_TOOLS)

    @field_validator("tools")
    @classmethod
    def _unique_names(cls, tools: list[ToolDefinition] | None) -> list[ToolDefinition] | None:
        # How tool messages fit the conversation is checked in service.py, in the loop that
        # builds the turns: a validator here would cost every reply a pass over its messages.
        if tools and len({tool.name for tool in tools}) != len(tools):
            raise ValueError("tool names must be unique")
        return tools


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
    """A whole (non-streamed) reply; `tool_calls` (present only when the model called tools,
    then `finish_reason` is `tool_calls`) are to be run and their results sent back."""

    content: str
    usage: Usage
    model: str
    finish_reason: str
    citations: list[Citation] = Field(default_factory=list)
    tool_calls: list[ToolCallSchema] = Field(default_factory=list)


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
