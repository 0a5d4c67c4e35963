"""Chat routes: thin handlers that parse, call the service and shape the answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from starlette.responses import JSONResponse, Response

from kibitz.kit.errors import ProblemError, problem_responses
from kibitz.kit.http.event_stream import EventStreamResponse, until_first
from kibitz.kit.http.fast_routes import fast_route
from kibitz.kit.http.sse import encode_comment, encode_retry
from kibitz.kit.jwt import InvalidToken, Principal, TokenVerifier
from kibitz.kit.observability import request_id_of
from kibitz.kit.security import CurrentPrincipal, bearer_token
from kibitz.services.chat import chats, participants, service
from kibitz.services.chat.dependencies import (
    ChatServiceDep,
    OwnedChat,
    OwnedChatToRead,
    ReadSessionDep,
    SessionDep,
    owned_chat_id,
)
from kibitz.services.chat.schemas import (
    ChatCreate,
    ChatPage,
    ChatRead,
    ChatSend,
    ChatUpdate,
    HistoryPage,
    MessageRead,
    SendResult,
)
from kibitz.services.chat.service import ChatService
from kibitz.services.chat.streams import Batch, ResumePoint
from kibitz.services.chat.streams.follow import follow

router = APIRouter(prefix="/chat", tags=["chat"])

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    # nginx and friends: pass each event on at once instead of buffering the response.
    "X-Accel-Buffering": "no",
}
# 10 s: a WebSocket client that has not authenticated by then is closed.
_WS_AUTH_SECONDS = 10.0
WS_UNAUTHORIZED, WS_NOT_FOUND = 4401, 4404
# 1 MiB: a message holds at most 32 000 characters (413 beyond); its JSON never comes near.
_SEND_MAX_BYTES = 1024 * 1024


def wants_event_stream(request: Request) -> bool:
    """Whether the client asked for `text/event-stream`."""
    return "text/event-stream" in request.headers.get("accept", "")


async def sse_body(frames: AsyncIterator[Batch | None]) -> AsyncIterator[bytes]:
    """Frames as `text/event-stream`; None becomes a heartbeat comment."""
    yield encode_retry(2000)
    try:
        async for batch in frames:
            yield (
                b"".join(frame.sse() for frame in batch)
                if batch is not None
                else encode_comment("heartbeat")
            )
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


def event_stream(frames: AsyncIterator[Batch | None], *, status_code: int = 200) -> Response:
    """A streaming SSE response that proxies do not buffer."""
    return EventStreamResponse(
        sse_body(frames),
        status_code=status_code,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.post(
    "/send",
    status_code=201,
    response_model=SendResult,
    responses={
        **problem_responses(401, 403, 404, 409, 413, 422, 429, 502, 503),
        201: {"content": {"text/event-stream": {}}},
    },
    summary="Send a message; the reply is generated in the background (or streamed here)",
    description=(
        "In a chat of several agents: `direct` is answered by the default agent, or by the "
        "`@Name`d participants in the order first named (422 `mention-not-resolved` for an "
        "unknown or ambiguous name); `panel` by every participant in order. Each reply is its "
        "own job, run one after another, each agent seeing the user's message and the answers "
        "before it; `agent_messages` lists them all (`pending` until their turn) and a streamed "
        "send ends after the last. Each reply counts a message against the quota (reserved at "
        "once: 429 when the quota cannot answer them all). Without the plan feature "
        "`multi_agent` (a downgrade) the default agent alone answers, and naming another "
        "participant is 403 `feature-not-in-plan`."
    ),
    max_body_size=_SEND_MAX_BYTES,
)
@fast_route()  # every message comes through here
async def send_message(
    body: ChatSend,
    request: Request,
    principal: CurrentPrincipal,
    chat: ChatServiceDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Store the message, start the reply; with `Accept: text/event-stream` stream it too."""
    stream = wants_event_stream(request)
    outcome = await service.send(
        chat,
        principal=principal,
        body=body,
        access_token=bearer_token(request) or "",
        idempotency_key=idempotency_key,
        request_id=request_id_of(request),
        stream=stream,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.frames is not None:
        response = event_stream(outcome.frames, status_code=201)
        response.headers.update(headers)
        return response
    return JSONResponse(outcome.result, status_code=201, headers=headers)


@router.get(
    "/history/{chat_id}",
    response_model=HistoryPage,
    responses=problem_responses(401, 404, 422),
    summary="A page of a chat's messages, oldest first; `next_cursor` pages back",
)
async def chat_history(
    chat: OwnedChatToRead,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[uuid.UUID | None, Query(description="next_cursor of the page after")] = None,
) -> Response:
    """Messages older than `before`, at most `limit`."""
    page = await chats.history(session, chat=chat, limit=limit, before=before)
    # Serialized once, straight from the model (no second validation by FastAPI).
    return Response(page.model_dump_json(), media_type="application/json")


@router.get(
    "/stream/{chat_id}",
    responses={**problem_responses(401, 404), 200: {"content": {"text/event-stream": {}}}},
    summary="The chat's live events (SSE); resume with Last-Event-ID",
)
async def chat_stream(
    chat_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    chat: ChatServiceDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """`message.created`, `message.delta`, `message.completed`, `message.failed`; heartbeats."""
    await owned_chat_id(
        chat.database, chat_id, tenant_id=principal.tenant_id, user_id=principal.user_id
    )
    resume = ResumePoint.parse(last_event_id or request.query_params.get("last_event_id"))
    return event_stream(_follow(chat, chat_id, resume))


def _follow(chat: ChatService, chat_id: uuid.UUID, resume: ResumePoint | None) -> Any:
    return follow(
        chat.database,
        chat.fanout,
        chat_id=chat_id,
        resume=resume,
        heartbeat_seconds=chat.settings.heartbeat_seconds,
    )


@router.get(
    "/chats",
    response_model=ChatPage,
    responses=problem_responses(401, 422),
    summary="My chats, most recently active first",
)
async def list_chats(
    principal: CurrentPrincipal,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """A page of the caller's chats."""
    return await chats.list_chats(session, principal=principal, limit=limit, cursor=cursor)


@router.get(
    "/chats/{chat_id}",
    response_model=ChatRead,
    responses=problem_responses(401, 404),
    summary="One chat",
)
async def get_chat(chat: OwnedChatToRead) -> ChatRead:
    """The chat, if it is the caller's."""
    return ChatRead.model_validate(chat)


@router.post(
    "/chats",
    status_code=201,
    response_model=ChatRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Start a chat with 1 to 8 agents (the first is the default) in a mode",
)
async def create_chat(
    body: ChatCreate,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    parts: ChatServiceDep,
) -> dict[str, Any]:
    """The new chat, with no messages yet."""
    return await participants.create_chat(
        session,
        agents=parts.agents,
        plans=parts.plans,
        principal=principal,
        body=body,
        access_token=bearer_token(request) or "",
    )


@router.patch(
    "/chats/{chat_id}",
    response_model=ChatRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Rename a chat, change its participants or its mode",
)
async def update_chat(
    body: ChatUpdate,
    request: Request,
    chat: OwnedChat,
    principal: CurrentPrincipal,
    session: SessionDep,
    parts: ChatServiceDep,
) -> dict[str, Any]:
    """The chat as it now is."""
    return await participants.update_chat(
        session,
        chat=chat,
        agents=parts.agents,
        plans=parts.plans,
        principal=principal,
        body=body,
        access_token=bearer_token(request) or "",
    )


@router.delete(
    "/chats/{chat_id}",
    status_code=204,
    responses=problem_responses(401, 404),
    summary="Delete a chat and its messages",
)
async def delete_chat(chat: OwnedChat, session: SessionDep, parts: ChatServiceDep) -> Response:
    """Delete the chat; replies being generated are stopped."""
    await chats.delete_chat(session, chat=chat, fanout=parts.fanout, generator=parts.generator)
    return Response(status_code=204)


@router.post(
    "/messages/{message_id}/stop",
    response_model=MessageRead,
    responses=problem_responses(401, 404, 409),
    summary="Stop a reply being generated (what streamed is kept)",
    description=(
        "Stopping any reply of a turn of several agents stops the turn: the reply being "
        "generated keeps what streamed, and the replies that have not started end `stopped` "
        "with no content (their message is given back to the quota)."
    ),
)
async def stop_reply(
    message_id: uuid.UUID, principal: CurrentPrincipal, chat: ChatServiceDep
) -> dict[str, Any]:
    """The reply, now `stopped` (or as it was, if it had already finished)."""
    return await service.stop(chat, principal=principal, message_id=message_id)


@router.websocket("/ws/{chat_id}")
async def chat_socket(websocket: WebSocket, chat_id: str) -> None:
    """The same events as the SSE stream, as JSON text messages `{event, id, data}`.

    The access token never goes in the URL: send it in `Sec-WebSocket-Protocol: bearer, <token>`
    (the server answers with the `bearer` subprotocol), in an Authorization header, or as the
    first message `{"type": "auth", "token": "...", "last_event_id": "..."}`.
    """
    chat: ChatService = websocket.app.state.chat_service
    protocols = [
        item.strip()
        for item in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if item.strip()
    ]
    token: str | None = None
    subprotocol: str | None = None
    if "bearer" in protocols:
        subprotocol = "bearer"
        position = protocols.index("bearer")
        token = protocols[position + 1] if position + 1 < len(protocols) else None
    if token is None:
        scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    last_event_id = websocket.headers.get("last-event-id")
    await websocket.accept(subprotocol=subprotocol)
    if token is None:
        try:
            first = json.loads(await asyncio.wait_for(websocket.receive_text(), _WS_AUTH_SECONDS))
        except (TimeoutError, ValueError, WebSocketDisconnect, RuntimeError):
            first = None
        if isinstance(first, dict) and first.get("type") == "auth":
            token = str(first.get("token") or "") or None
            last_event_id = first.get("last_event_id") or last_event_id
    principal = await _verify(websocket.app.state.token_verifier, token)
    if principal is None:
        await websocket.close(code=WS_UNAUTHORIZED, reason="unauthorized")
        return
    try:
        chat_key = uuid.UUID(chat_id)
        await owned_chat_id(
            chat.database, chat_key, tenant_id=principal.tenant_id, user_id=principal.user_id
        )
    except (ValueError, ProblemError):
        await websocket.close(code=WS_NOT_FOUND, reason="not found")
        return
    frames = _follow(chat, chat_key, ResumePoint.parse(last_event_id))
    try:
        # A send to a client that just left fails: nothing is left to tell it.
        with contextlib.suppress(Exception):
            await until_first(_send_frames(websocket, frames), _until_disconnected(websocket))
    finally:
        with contextlib.suppress(Exception):
            await websocket.close()


async def _verify(verifier: TokenVerifier, token: str | None) -> Principal | None:
    if not token:
        return None
    try:
        return await verifier.verify(token)
    except InvalidToken:
        return None


async def _send_frames(websocket: WebSocket, frames: AsyncIterator[Batch | None]) -> None:
    try:
        async for batch in frames:
            if batch is None:
                await websocket.send_text('{"event":"heartbeat"}')
                continue
            for frame in batch:
                await websocket.send_text(frame.json())
    finally:
        await frames.aclose()  # type: ignore[attr-defined]


async def _until_disconnected(websocket: WebSocket) -> None:
    # Client messages carry nothing after authentication; reading them notices the close.
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
