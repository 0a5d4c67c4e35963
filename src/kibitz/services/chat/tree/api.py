"""`POST /chat/messages/{id}/regenerate` and `POST /chat/messages/{id}/edit`: new branches,
answered (or streamed) as a send is."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from starlette.responses import JSONResponse, Response

from kibitz.kit.errors import problem_responses
from kibitz.kit.observability import request_id_of
from kibitz.kit.security import CurrentPrincipal, bearer_token
from kibitz.services.chat.api import event_stream, wants_event_stream
from kibitz.services.chat.dependencies import ChatServiceDep
from kibitz.services.chat.schemas import MessageEdit, Regeneration, ReplyResult, SendResult
from kibitz.services.chat.service import SendOutcome
from kibitz.services.chat.tree import steps

router = APIRouter(prefix="/chat", tags=["chat"])

# 1 MiB, as a send: an edit holds at most 32 000 characters (413 beyond).
_EDIT_MAX_BYTES = 1024 * 1024
_STREAMED: dict[int | str, dict[str, Any]] = {201: {"content": {"text/event-stream": {}}}}


def _answer(outcome: SendOutcome) -> Response:
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    if outcome.frames is not None:
        response = event_stream(outcome.frames, status_code=201)
        response.headers.update(headers)
        return response
    return JSONResponse(outcome.result, status_code=201, headers=headers)


@router.post(
    "/messages/{message_id}/regenerate",
    status_code=201,
    response_model=ReplyResult,
    responses={**problem_responses(401, 404, 409, 422, 429, 502, 503), **_STREAMED},
    summary="Another reply beside an agent's (same parent); streamed like a send",
)
async def regenerate_reply(
    message_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    chat: ChatServiceDep,
    body: Annotated[Regeneration | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """By the same agent, or (`agent_id`) another participant of the chat."""
    outcome = await steps.regenerate(
        chat,
        principal=principal,
        message_id=message_id,
        body=body or Regeneration(),
        idempotency_key=idempotency_key,
        request_id=request_id_of(request),
        stream=wants_event_stream(request),
    )
    return _answer(outcome)


@router.post(
    "/messages/{message_id}/edit",
    status_code=201,
    response_model=SendResult,
    responses={**problem_responses(401, 404, 409, 413, 422, 429, 502, 503), **_STREAMED},
    summary="A new version of my message beside the old one (same parent), answered anew",
    max_body_size=_EDIT_MAX_BYTES,
)
async def edit_message(
    message_id: uuid.UUID,
    body: MessageEdit,
    request: Request,
    principal: CurrentPrincipal,
    chat: ChatServiceDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """The new user message and its reply, as a send answers them."""
    outcome = await steps.edit(
        chat,
        principal=principal,
        message_id=message_id,
        body=body,
        access_token=bearer_token(request) or "",
        idempotency_key=idempotency_key,
        request_id=request_id_of(request),
        stream=wants_event_stream(request),
    )
    return _answer(outcome)
