"""How an exported chat reads: Markdown for people, JSON for programs; a filename that is safe."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from urllib.parse import quote

from kibitz.services.chat.models import Chat, Message
from kibitz.services.chat.schemas import ChatRead, MessageRead

# Characters Markdown would read as syntax in a heading.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|~])")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9 ._-]+")
# 80 characters before the extension: every file system takes it.
_FILENAME_CHARS = 80
_STATUS_NOTES = {
    "stopped": "stopped before the end",
    "failed": "failed",
    "pending": "not written yet",
    "streaming": "still being written",
}


def content_disposition(title: str, extension: str) -> str:
    """`attachment` with an ASCII filename made from the title and the exact one (RFC 6266)."""
    ascii_name = " ".join(_UNSAFE_FILENAME.sub(" ", title).split()).strip(" .")
    ascii_name = ascii_name[:_FILENAME_CHARS].rstrip(" .") or "chat"
    exact = quote(f"{title[:_FILENAME_CHARS]}.{extension}", safe="")
    return f"attachment; filename=\"{ascii_name}.{extension}\"; filename*=UTF-8''{exact}"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def markdown_header(chat: Chat, *, exported_at: datetime) -> str:
    """The title (as text, escaped) and when the chat was exported."""
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(chat.title.split()))
    return f"# {title}\n\n_Exported from kibitz on {_when(exported_at)}._\n"


def markdown_message(message: Message) -> str:
    """One message: who said it and when, what was said, the sources an answer was given."""
    who = "You" if message.sender == "user" else "Agent"
    if message.sender != "user" and message.model:
        who += f" ({message.model})"
    lines = [f"\n---\n\n**{who}** · {_when(message.created_at)}"]
    note = _STATUS_NOTES.get(message.status)
    if note:
        lines[0] += f" · _{note}_"
    lines.append("")
    lines.append(message.content.strip() or "_(empty)_")
    citations = message.citations or []
    if citations:
        lines.append("")
        lines.append("Sources:")
        for number, citation in enumerate(citations, start=1):
            excerpt = " ".join(str(citation.get("text", "")).split())
            if len(excerpt) > 200:
                excerpt = excerpt[:199].rstrip() + "…"
            lines.append(f"{number}. **{citation.get('title', '')}**: {excerpt}")
    return "\n".join(lines) + "\n"


async def markdown_body(
    chat: Chat, batches: AsyncIterator[Iterable[Message]], *, exported_at: datetime
) -> AsyncIterator[bytes]:
    """The chat as one Markdown document, a batch of messages at a time."""
    yield markdown_header(chat, exported_at=exported_at).encode()
    async for batch in batches:
        yield "".join(markdown_message(message) for message in batch).encode()


async def json_body(
    chat: Chat, batches: AsyncIterator[Iterable[Message]], *, exported_at: datetime
) -> AsyncIterator[bytes]:
    """`{format, exported_at, chat, messages: [...]}`, the messages as the API shows them."""
    head = {
        "format": "kibitz.chat.v1",
        "exported_at": exported_at.isoformat(),
        "chat": ChatRead.model_validate(chat).model_dump(mode="json"),
    }
    yield (json.dumps(head)[:-1] + ', "messages": [').encode()
    first = True
    async for batch in batches:
        parts = []
        for message in batch:
            parts.append(
                ("" if first else ",") + MessageRead.model_validate(message).model_dump_json()
            )
            first = False
        yield "".join(parts).encode()
    yield b"]}"
