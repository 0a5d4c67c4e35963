"""The latest messages of the chats this process served recently, as it last saw them.

A send to a chat remembered here asks the agent straight away, from these messages, and reads
the database while the request is on its way (measured at one user: that read was ~0.9 ms of the
~7 ms chat added before the first token). The database stays the truth: a send whose remembered
messages give another context than the ones it reads restarts the reply from what it read. So a
second process writing to the same chats (chat replicas behind round-robin) costs a restarted
request each time: such deployments turn this off (`KIBITZ_CHAT_RECENT_CHATS=0`), and a process
that keeps being contradicted stops remembering by itself.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace

import structlog

from kibitz.services.chat.repository import RecentMessage

logger = structlog.get_logger("kibitz.chat")

# Contradicted this many times in a row, a process assumes another one writes to its chats.
_CONTRADICTIONS_TO_STOP = 10


@dataclass(frozen=True)
class RecentChat:
    """A chat's owner and agent, and its latest messages (newest first)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    agent_id: uuid.UUID
    messages: tuple[RecentMessage, ...]


class RecentMessages:
    """Up to `chats` chats, least recently used dropped first; each keeps the messages a reply's
    context can still use: at most `messages` of them, and none past `chars` characters."""

    def __init__(self, *, chats: int, messages: int, chars: int) -> None:
        self.chats = chats
        self.messages = messages
        self.chars = chars
        self._recent: OrderedDict[uuid.UUID, RecentChat] = OrderedDict()
        self._contradictions = 0

    def get(
        self, chat_id: uuid.UUID, *, tenant_id: uuid.UUID, user_id: uuid.UUID
    ) -> RecentChat | None:
        """The chat as last seen, if it is remembered and belongs to this user of this tenant."""
        chat = self._recent.get(chat_id)
        if chat is None or chat.tenant_id != tenant_id or chat.user_id != user_id:
            return None
        self._recent.move_to_end(chat_id)
        return chat

    def put(self, chat_id: uuid.UUID, chat: RecentChat) -> None:
        """Remember the chat as it now stands in the database."""
        if self.chats <= 0:
            return
        self._recent[chat_id] = replace(chat, messages=self._usable(chat.messages))
        self._recent.move_to_end(chat_id)
        while len(self._recent) > self.chats:
            self._recent.popitem(last=False)

    def checked(self, *, agreed: bool) -> None:
        """Whether the stored messages agreed with the remembered ones, for a send that asked
        early. Contradicted again and again, the process stops remembering: each time cost the
        agent a second request."""
        self._contradictions = 0 if agreed else self._contradictions + 1
        if self._contradictions >= _CONTRADICTIONS_TO_STOP and self.chats > 0:
            logger.warning(
                "chat_recent_messages_stopped",
                reason="another process writes to these chats; set KIBITZ_CHAT_RECENT_CHATS=0",
            )
            self.chats = 0
            self._recent.clear()

    def reply_finished(
        self, chat_id: uuid.UUID, message_id: uuid.UUID, *, content: str, status: str
    ) -> None:
        """A reply's final content and status (a chat not remembered, or moved on, is left)."""
        chat = self._recent.get(chat_id)
        if chat is None:
            return
        messages = tuple(
            RecentMessage(message_id, message.sender, content, status)
            if message.id == message_id
            else message
            for message in chat.messages
        )
        self._recent[chat_id] = replace(chat, messages=self._usable(messages))

    def forget(self, chat_id: uuid.UUID) -> None:
        """Drop the chat (it was deleted)."""
        self._recent.pop(chat_id, None)

    def _usable(self, messages: tuple[RecentMessage, ...]) -> tuple[RecentMessage, ...]:
        # A context counts at most `chars` characters, newest first: older ones never reach it.
        kept: list[RecentMessage] = []
        chars = 0
        for message in messages[: self.messages]:
            chars += len(message.content)
            if chars > self.chars:
                break
            kept.append(message)
        return tuple(kept)
