"""`GET /chat/chats/{id}/export`: the chat as a Markdown or JSON download."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from kibitz.kit.errors import problem_responses
from kibitz.services.chat.dependencies import OwnedChatToRead
from kibitz.services.chat.export.render import content_disposition, json_body, markdown_body
from kibitz.services.chat.export.repository import messages_after
from kibitz.services.chat.models import Message, utcnow
from kibitz.services.chat.repository import ChatRepository
from kibitz.services.chat.storage import ChatDatabase
from kibitz.services.chat.tree.history import branch_ids

router = APIRouter(prefix="/chat", tags=["chat"])

# Messages read per statement: the export streams, so a 100 000-message chat never sits in memory.
_BATCH = 500
_MEDIA = {"markdown": "text/markdown; charset=utf-8", "json": "application/json"}
_EXTENSION = {"markdown": "md", "json": "json"}


async def _tree_batches(
    database: ChatDatabase, chat_id: uuid.UUID
) -> AsyncIterator[Iterable[Message]]:
    after: uuid.UUID | None = None
    while True:
        async with database.reading() as session:
            batch = await messages_after(session, chat_id, after=after, limit=_BATCH)
        if not batch:
            return
        yield batch
        if len(batch) < _BATCH:
            return
        after = batch[-1].id


async def _branch_batches(
    database: ChatDatabase, chat_id: uuid.UUID, ids: list[uuid.UUID]
) -> AsyncIterator[Iterable[Message]]:
    for offset in range(0, len(ids), _BATCH):
        chunk = ids[offset : offset + _BATCH]
        async with database.reading() as session:
            found = {m.id: m for m in await ChatRepository(session).messages_by_ids(chat_id, chunk)}
        yield [found[message_id] for message_id in chunk if message_id in found]


@router.get(
    "/chats/{chat_id}/export",
    responses={
        **problem_responses(401, 404, 422),
        200: {"content": {"text/markdown": {}, "application/json": {}}},
    },
    summary="Download a chat as Markdown or JSON",
)
async def export_chat(
    chat: OwnedChatToRead,
    request: Request,
    format: Annotated[Literal["markdown", "json"], Query()] = "markdown",
    leaf: Annotated[
        uuid.UUID | None,
        Query(description="The branch through this message (default: the newest leaf's)"),
    ] = None,
    tree: Annotated[
        bool, Query(description="Every message of the chat, each with its parent_id")
    ] = False,
) -> StreamingResponse:
    """The conversation as shown (one branch, root first), or with `tree` every message of the
    chat, oldest first: Markdown (who said what, sources) or JSON (the messages as the API shows
    them, with the chat's metadata)."""
    database: ChatDatabase = request.app.state.database
    render = markdown_body if format == "markdown" else json_body
    if tree:
        batches = _tree_batches(database, chat.id)
    else:
        async with database.reading() as session:
            ids = await branch_ids(session, chat_id=chat.id, leaf=leaf, batch=_BATCH)
        batches = _branch_batches(database, chat.id, ids)
    body = render(chat, batches, exported_at=utcnow())
    return StreamingResponse(
        body,
        media_type=_MEDIA[format],
        headers={
            "Content-Disposition": content_disposition(chat.title, _EXTENSION[format]),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
