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
from kibitz.services.chat.storage import ChatDatabase

router = APIRouter(prefix="/chat", tags=["chat"])

# Messages read per statement: the export streams, so a 100 000-message chat never sits in memory.
_BATCH = 500
_MEDIA = {"markdown": "text/markdown; charset=utf-8", "json": "application/json"}
_EXTENSION = {"markdown": "md", "json": "json"}


async def _batches(database: ChatDatabase, chat_id: uuid.UUID) -> AsyncIterator[Iterable[Message]]:
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
) -> StreamingResponse:
    """Every message, oldest first: Markdown (who said what, sources) or JSON (the messages as
    the API shows them, with the chat's metadata)."""
    database: ChatDatabase = request.app.state.database
    render = markdown_body if format == "markdown" else json_body
    body = render(chat, _batches(database, chat.id), exported_at=utcnow())
    return StreamingResponse(
        body,
        media_type=_MEDIA[format],
        headers={
            "Content-Disposition": content_disposition(chat.title, _EXTENSION[format]),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
