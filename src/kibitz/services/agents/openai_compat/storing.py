"""`store: true` (or the `X-Kibitz-Chat-Id` header): an OpenAI-compatible completion kept as a
kibitz chat, through chat's internal route (`kibitz.contracts.chat.StoreCompletion`).

A call, not an event: this service has no bus (all-in-one it runs in a process of its own), and
the client that asked to keep the exchange should find the chat as soon as its answer ends, so
the answer's last frame waits for chat's reply. The turns' ids are chosen once per completion,
so the call's retry stores nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog

from kibitz.contracts.chat import StoreCompletion, StoredTurn
from kibitz.kit.errors import NotFound, ProblemError, ServiceUnavailable
from kibitz.kit.http import ServiceClient
from kibitz.kit.ids import new_id
from kibitz.kit.jwt import Principal
from kibitz.kit.platform import Platform
from kibitz.services.agents.openai_compat.schemas import ChatMessage
from kibitz.services.agents.providers.base import StreamEnd

logger = structlog.get_logger("kibitz.agents.openai_compat")

CHAT_ID_HEADER = "x-kibitz-chat-id"
# 10 s: the answer's end waits for this; chat stores a few rows.
_STORE_TIMEOUT_SECONDS = 10.0
_STORE_ATTEMPTS = 2


class NoSuchChat(NotFound):
    """The chat the header names is not one of the caller's."""

    problem_type, title = "chat-not-found", "Chat Not Found"


@dataclass(frozen=True)
class Keeping:
    """Where one completion is to be kept: a new chat (its id chosen here) or an existing one."""

    chat_id: uuid.UUID
    new_chat: bool
    turns: tuple[StoredTurn, ...]
    reply_id: uuid.UUID


def keeping(*, store: bool, chat_header: str | None, messages: list[ChatMessage]) -> Keeping | None:
    """What to keep of this request, if anything. A new chat keeps the conversation's turns
    (instructions aside); an existing one those since the last assistant turn."""
    if chat_header is None and not store:
        return None
    if chat_header is not None:
        try:
            chat_id, new_chat = uuid.UUID(chat_header), False
        except ValueError:
            raise NoSuchChat(f"{CHAT_ID_HEADER} names no chat of yours.") from None
    else:
        chat_id, new_chat = new_id(), True
    conversation = [message for message in messages if message.role in ("user", "assistant")]
    if not new_chat:
        last_reply = max(
            (i for i, message in enumerate(conversation) if message.role == "assistant"),
            default=-1,
        )
        conversation = conversation[last_reply + 1 :]
    turns = tuple(
        StoredTurn(
            id=new_id(),
            sender="user" if message.role == "user" else "agent",
            content=message.text,
        )
        for message in conversation
    )
    return Keeping(chat_id=chat_id, new_chat=new_chat, turns=turns, reply_id=new_id())


class ChatKeeper:
    """Sends completions to be kept to the chat service."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._client: ServiceClient | None = None

    @property
    def available(self) -> bool:
        """Whether this deployment runs chat (without it, `store` is ignored)."""
        return self._platform.has_service("chat")

    async def keep(
        self,
        keeping: Keeping,
        *,
        principal: Principal,
        agent_id: uuid.UUID,
        completion_id: str,
        reply: str,
        end: StreamEnd,
    ) -> None:
        """Store the exchange; 404 when the named chat is not the caller's, 503 when chat
        cannot be reached."""
        body = StoreCompletion(
            completion_id=completion_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            agent_id=agent_id,
            chat_id=keeping.chat_id,
            new_chat=keeping.new_chat,
            turns=[*keeping.turns, StoredTurn(id=keeping.reply_id, sender="agent", content=reply)],
            model=end.model[:200] or None,
            finish_reason=end.finish_reason[:50] or None,
            input_tokens=end.input_tokens,
            output_tokens=end.output_tokens,
        )
        self._client = self._client or self._platform.client("chat")
        status = 0
        for _ in range(_STORE_ATTEMPTS):
            try:
                response = await self._client.request(
                    "POST",
                    "/chat/internal/completions",
                    json=body.model_dump(mode="json"),
                    timeout=_STORE_TIMEOUT_SECONDS,
                )
            except ProblemError as unreachable:
                status = unreachable.status
                continue
            status = response.status_code
            if status == 200:
                return
            if status == 404:
                raise NoSuchChat(f"{CHAT_ID_HEADER} names no chat of yours.")
            if status < 500:
                break
        logger.warning("openai_completion_not_stored", status=status)
        raise ServiceUnavailable("The completion could not be kept as a chat.", retry_after=5)

    async def aclose(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.aclose()
