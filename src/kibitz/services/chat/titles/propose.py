"""Titles proposed by the agent: after the first reply of a new chat, for a user who opted in
(the users service's `propose_titles` preference), the chat's agent is asked for a short title
and the chat renamed to it, its subscribers told (`chat.updated`).

The ask is metered like a reply: the tenant's monthly tokens are checked first (a spent quota
means no proposal) and its tokens are counted by a `chat.message_completed` (kind `title`)
written with the rename. It never counts a message of the daily quota: the person sent none.
It runs in the background once the reply has finished, so the reply never waits for it, and it
gives way to a person: a chat renamed meanwhile (or named at its first send) keeps its name.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from kibitz.contracts.events import MessageCompleted
from kibitz.kit.events import Outbox
from kibitz.kit.http import ServiceClient, acting_for
from kibitz.kit.ids import new_id
from kibitz.services.chat.models import utcnow
from kibitz.services.chat.replies.agent_stream import ReplyProgress, estimated_tokens
from kibitz.services.chat.replies.orders import ReplyOrder
from kibitz.services.chat.schemas import ChatRead
from kibitz.services.chat.sending.context import default_title
from kibitz.services.chat.sending.quota import QuotaGate
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.streams.cursor import CHAT_UPDATED
from kibitz.services.chat.streams.fanout import Fanout
from kibitz.services.chat.titles.plain import plain_text
from kibitz.services.chat.titles.repository import TitleRepository

logger = structlog.get_logger("kibitz.chat.titles")

PREFERENCE = "propose_titles"
INSTRUCTION = (
    "Propose a title for this conversation so far: at most six words, plain text, no quotes. "
    "Answer with the title only."
)
# A proposed title is cut to this many characters (a default title's limit too).
MAX_TITLE_CHARS = 80
# What of the first exchange the agent is shown: enough to name it, bounded whatever its size.
_SHOWN_CHARS = 2000
# 30 s: a title nobody waits for is not worth a longer hold on the agent.
_ASK_TIMEOUT_SECONDS = 30.0
# Quotation marks, straight and curly (written as escapes: they look alike).
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"


def clean_title(answer: str) -> str:
    """The agent's answer as a title: its first line, plain text, unquoted, length-limited
    ("" when nothing is left)."""
    line = next((line for line in answer.strip().splitlines() if line.strip()), "")
    title = plain_text(line).strip().strip(_QUOTES).rstrip(".").strip()
    if title.lower().startswith("title:"):
        title = title[len("title:") :].strip().strip(_QUOTES)
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


class TitleProposer:
    """Proposes titles in the background; one per chat process."""

    def __init__(
        self,
        *,
        database: ChatDatabase,
        outbox: Outbox,
        fanout: Fanout,
        agents: ServiceClient,
        users: ServiceClient | None,
        quota: QuotaGate,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.fanout = fanout
        self.agents = agents
        self.users = users
        self.quota = quota
        self._tasks: set[asyncio.Task[None]] = set()

    def after_reply(self, order: ReplyOrder, progress: ReplyProgress) -> None:
        """A reply completed: when it may be a new chat's first, propose a title (background).

        A first reply is asked from the first message alone: any other reply is passed over
        here, without a query."""
        if self.users is None or len(order.context) != 1 or not progress.content:
            return
        task = asyncio.create_task(self._propose(order, progress.content))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Drop proposals still running (a title is a nicety: nothing is lost)."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _propose(self, order: ReplyOrder, reply: str) -> None:
        try:
            await self.propose(order, reply)
        except Exception:
            logger.warning("chat_title_proposal_failed", chat_id=str(order.chat_id), exc_info=True)

    async def propose(self, order: ReplyOrder, reply: str) -> str | None:
        """Ask the agent for a title and rename the chat; the new title, or None when the
        chat keeps its own (not the first reply, not opted in, a person named it, quota
        spent, no usable answer)."""
        async with self.database.reading() as session:
            exchange = await TitleRepository(session).first_exchange(order.chat_id)
        if exchange is None or exchange.first_reply_id != order.message_id:
            return None
        if exchange.title not in (default_title(exchange.first_message), "New chat"):
            return None  # named by a person
        if not await self._opted_in(order):
            return None
        if not await self.quota.check_tokens(order.tenant_id, key=f"{order.message_id}:title"):
            return None
        answer = await self._ask(order, exchange.first_message, reply)
        if answer is None:
            return None
        content, input_tokens, output_tokens = answer
        title = clean_title(content)
        async with self.database.transaction() as session:
            # The tokens were spent whatever becomes of the rename.
            await self.outbox.add(
                session,
                MessageCompleted(
                    message_id=new_id(),
                    chat_id=order.chat_id,
                    tenant_id=order.tenant_id,
                    user_id=order.user_id,
                    agent_id=order.agent_id,
                    status="complete",
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    kind="title",
                ),
            )
            chat = (
                await TitleRepository(session).retitle(
                    order.chat_id, expected=exchange.title, title=title, at=utcnow()
                )
                if title
                else None
            )
            renamed = ChatRead.model_validate(chat).model_dump(mode="json") if chat else None
        if renamed is None:
            return None
        with contextlib.suppress(Exception):
            await self.fanout.publish(str(order.chat_id), {"type": CHAT_UPDATED, "chat": renamed})
        logger.info("chat_title_proposed", chat_id=str(order.chat_id))
        return title

    def _auth_headers(self, order: ReplyOrder) -> dict[str, str]:
        # As the user, by chat's service credential (a reply job holds no token of theirs).
        headers = acting_for(tenant_id=order.tenant_id, user_id=order.user_id)
        if order.request_id:
            headers["X-Request-ID"] = order.request_id
        return headers

    async def _opted_in(self, order: ReplyOrder) -> bool:
        """Whether the user turned title proposals on."""
        assert self.users is not None
        response = await self.users.request(
            "GET",
            "/users/internal/preferences",
            headers=self._auth_headers(order),
            timeout=_ASK_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            return False
        preferences = response.json().get("preferences") or {}
        return preferences.get(PREFERENCE) is True

    async def _ask(
        self, order: ReplyOrder, first_message: str, reply: str
    ) -> tuple[str, int, int] | None:
        """(The agent's answer, input tokens, output tokens), or None when it would not answer."""
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": first_message[:_SHOWN_CHARS]},
            {"role": "assistant", "content": reply[:_SHOWN_CHARS]},
            {"role": "user", "content": INSTRUCTION},
        ]
        body = {"agent_id": str(order.agent_id), "messages": messages, "stream": False}
        response = await self.agents.request(
            "POST",
            "/agents/internal/respond",
            json=body,
            headers=self._auth_headers(order),
            timeout=_ASK_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            logger.info("chat_title_not_answered", status=response.status_code)
            return None
        result = response.json()
        content = str(result.get("content") or "")
        usage = result.get("usage") or {}
        input_tokens = int(usage.get("input_tokens") or 0)
        output_tokens = int(usage.get("output_tokens") or 0)
        if not input_tokens and not output_tokens:
            input_tokens = sum(estimated_tokens(str(m["content"])) for m in messages)
            output_tokens = estimated_tokens(content)
        return content, input_tokens, output_tokens
