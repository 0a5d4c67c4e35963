"""OpenAI's chat-completions request, as far as kibitz honours it.

Unknown fields are ignored (clients send `top_p`, `user`, `seed`… by default); what kibitz cannot
do (tools, images, several choices) is refused with 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from kibitz.kit.inputs import StrictFloat

# Hard cap per text; the agents service's configured (smaller) limits answer 413.
_MAX_TEXT = 200_000


class TextPart(BaseModel):
    """A text part of a message's content (the only kind kibitz takes)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: Annotated[str, Field(max_length=_MAX_TEXT)]


class ChatMessage(BaseModel):
    """One message of the conversation; `developer` is OpenAI's newer name for `system`."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=_MAX_TEXT)] | list[TextPart] | None = None

    @property
    def text(self) -> str:
        """The content as one text."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    @property
    def kibitz_role(self) -> Literal["system", "user", "assistant"]:
        """The role as the agents' providers know it."""
        return "system" if self.role == "developer" else self.role


class StreamOptions(BaseModel):
    """`include_usage`: one more chunk, before `[DONE]`, carrying the usage."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`model` is an agent's id, or a name only one of the caller's agents has."""

    model_config = ConfigDict(extra="ignore")

    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=1000)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    # The agent's temperature unless given; the agents' own bounds (0-2).
    temperature: Annotated[StrictFloat, Field(ge=0, le=2)] | None = None
    # Lower the deployment's cap on reply tokens, never raise it.
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    # One choice only.
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    # Keep the exchange as a kibitz chat (OpenAI keeps it for its dashboard).
    store: bool = False

    @property
    def output_token_limit(self) -> int | None:
        """The reply token limit the client asked for (the newer field wins)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return self.stream_options is not None and self.stream_options.include_usage
