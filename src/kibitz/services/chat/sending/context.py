"""What a reply is asked from: the chat's title and the recent history sent to the agent."""

from __future__ import annotations

from collections.abc import Sequence

from kibitz.services.chat.models import MessageStatus, Sender
from kibitz.services.chat.sending.repository import RecentMessage
from kibitz.services.chat.titles.plain import plain_text

# A chat's title defaults to this many of the first message's words.
_TITLE_WORDS = 8
_TITLE_CHARS = 80


def default_title(content: str) -> str:
    """The first words of a message, as a chat title (plain text: no Markdown syntax)."""
    words = plain_text(content).split()
    title = " ".join(words[:_TITLE_WORDS])
    if len(title) > _TITLE_CHARS:
        title = title[: _TITLE_CHARS - 1].rstrip() + "…"
    elif len(words) > _TITLE_WORDS:
        title += "…"
    return title or "New chat"


def reply_context(
    history: Sequence[RecentMessage], content: str, *, max_chars: int
) -> list[dict[str, str]]:
    """The recent history sent to the agent (newest kept first), ending with the new message."""
    budget = max_chars - len(content)
    window: list[dict[str, str]] = []
    for _, sender, text, status in history:  # newest first
        if not text or status == MessageStatus.PENDING.value:
            continue
        budget -= len(text)
        if budget < 0:
            break
        role = "user" if sender == Sender.USER.value else "assistant"
        window.append({"role": role, "content": text})
    window.reverse()
    # Providers expect the conversation to open with the user.
    while window and window[0]["role"] != "user":
        window.pop(0)
    window.append({"role": "user", "content": content})
    return window
