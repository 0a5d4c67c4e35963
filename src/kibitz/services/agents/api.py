"""Routes of the agents service: thin handlers over `service`."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, status
from starlette.responses import JSONResponse, Response

from kibitz.kit.db import SessionDep
from kibitz.kit.errors import ProblemError, problem_responses
from kibitz.kit.http.event_stream import EventStreamResponse, client_gone, until_first
from kibitz.kit.http.fast_routes import fast_route
from kibitz.kit.http.sse import encode_event
from kibitz.kit.jwt import Principal
from kibitz.kit.observability import OPEN_STREAMS
from kibitz.kit.security import ActingPrincipal, CurrentPrincipal, ServiceCaller
from kibitz.services.agents import replies, service
from kibitz.services.agents.dependencies import OwnedAgent, RuntimeDep
from kibitz.services.agents.providers.base import (
    StreamEnd,
    StreamItem,
    StreamStart,
    TextDelta,
    ToolCall,
)
from kibitz.services.agents.schemas import (
    AgentCount,
    AgentCreate,
    AgentList,
    AgentRead,
    AgentUpdate,
    ProviderCatalogue,
    RespondRequest,
    RespondResult,
)
from kibitz.services.agents.service import AgentsRuntime

router = APIRouter(prefix="/agents", tags=["agents"])
internal = APIRouter(
    prefix="/agents/internal", tags=["agents (internal)"], dependencies=[ServiceCaller]
)
T = TypeVar("T")
# 16 MiB: far above any conversation the configured limits let through (they answer 413).
_RESPOND_MAX_BYTES = 16 * 1024 * 1024
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_SSE_DOC = {
    "text/event-stream": {
        "schema": {"type": "string"},
        "example": 'event: delta\ndata: {"content": "Hi"}\n\n',
    }
}


@router.post(
    "/create",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentRead,
    responses=problem_responses(401, 403, 422),
    summary="Create an agent",
)
async def create_agent(
    body: AgentCreate, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Create an agent (403 when the plan does not allow the model or another agent)."""
    agent = await service.create_agent(session, runtime=runtime, principal=principal, data=body)
    return service.agent_read(agent)


@router.get(
    "/my", response_model=AgentList, responses=problem_responses(401, 422), summary="My agents"
)
async def my_agents(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The caller's agents, oldest first, a page at a time."""
    agents, next_cursor = await service.list_agents(
        session, principal=principal, limit=limit, cursor=cursor
    )
    return {"items": [service.agent_read(agent) for agent in agents], "next_cursor": next_cursor}


@router.get(
    "/providers",
    response_model=ProviderCatalogue,
    responses=problem_responses(401, 503),
    summary="Providers and models on offer",
)
async def providers(principal: CurrentPrincipal, runtime: RuntimeDep) -> ProviderCatalogue:
    """Providers and models this deployment offers and the tenant's plan allows."""
    return await service.provider_catalogue(runtime=runtime, principal=principal)


_RESPOND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _SSE_DOC, "description": "The reply, or with `stream: true` an SSE stream"},
    **problem_responses(401, 403, 404, 413, 422, 502, 503, 504),
}


@router.post(
    "/respond",
    response_model=RespondResult,
    responses=_RESPOND_RESPONSES,
    summary="Have an agent answer",
    max_body_size=_RESPOND_MAX_BYTES,
)
@fast_route()  # every reply of every chat comes through here
async def respond(
    body: RespondRequest, principal: CurrentPrincipal, runtime: RuntimeDep, request: Request
) -> Response:
    """Answer: JSON, or with `stream: true` SSE `delta` events, a `tool_call` event per tool the
    model calls (when `tools` were offered), then `done` or `error`."""
    return await _answer(body, principal, runtime, request)


# Not on `internal`: a fast route's dependencies are named parameters (its check is one).
@router.post(
    "/internal/respond",
    response_model=RespondResult,
    responses=_RESPOND_RESPONSES,
    summary="Have an agent answer for a user (a kibitz service acting for them)",
    tags=["agents (internal)"],
    max_body_size=_RESPOND_MAX_BYTES,
)
@fast_route()  # chat's reply jobs: every reply of every chat
async def respond_for_user(
    body: RespondRequest, principal: ActingPrincipal, runtime: RuntimeDep, request: Request
) -> Response:
    """`/agents/respond` for the user a service names beside its credential (403 without it):
    a reply job runs after its send's request ended, when the user's token may have lapsed."""
    return await _answer(body, principal, runtime, request)


async def _answer(
    body: RespondRequest, principal: Principal, runtime: AgentsRuntime, request: Request
) -> Response:
    prepared = await replies.prepare_reply(runtime=runtime, principal=principal, body=body)
    items = replies.reply_stream(runtime=runtime, prepared=prepared)
    if not body.stream:
        result = await _unless_disconnected(request, _collect(items))
        if result is None:
            return Response(status_code=499)
        if prepared.citations:
            result["citations"] = prepared.citations
        return JSONResponse(result)
    # Failures before the provider accepts the request (after retries) answer with a status;
    # then the stream opens (its head goes out while the model thinks), and later failures
    # end it with an `error` event.
    first = await _unless_disconnected(request, anext(items))
    if first is None:
        await items.aclose()  # type: ignore[attr-defined]
        return Response(status_code=499)
    return EventStreamResponse(
        _sse(first, items, prepared.citations),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


@router.get(
    "/{agent_id}",
    response_model=AgentRead,
    responses=problem_responses(401, 404, 422),
    summary="One agent",
)
async def read_agent(agent: OwnedAgent) -> dict[str, Any]:
    """One of the caller's agents (404 if not theirs)."""
    return service.agent_read(agent)


@router.patch(
    "/{agent_id}",
    response_model=AgentRead,
    responses=problem_responses(401, 403, 404, 422),
    summary="Change an agent",
)
async def update_agent(
    body: AgentUpdate,
    agent: OwnedAgent,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Change some fields of one of the caller's agents."""
    updated = await service.update_agent(
        session, runtime=runtime, principal=principal, agent=agent, data=body
    )
    return service.agent_read(updated)


@internal.get(
    "/agents/{agent_id}",
    response_model=AgentRead,
    responses=problem_responses(403, 404, 422),
    summary="One agent of a user (a kibitz service acting for them)",
)
async def agent_for_user(
    agent_id: uuid.UUID, principal: ActingPrincipal, session: SessionDep
) -> dict[str, Any]:
    """For chat's orchestrated replies: a delegate's name and instructions, as its user sees
    them (404 when it is not theirs), asked long after the user's request ended."""
    agent = await service.get_agent(session, principal=principal, agent_id=agent_id)
    return service.agent_read(agent)


@internal.get(
    "/tenants/{tenant_id}/agent-count",
    response_model=AgentCount,
    responses=problem_responses(403, 422),
    summary="How many agents a tenant has",
)
async def tenant_agent_count(tenant_id: uuid.UUID, session: SessionDep) -> AgentCount:
    """For the tenants service: a downgrade must leave room for the tenant's agents."""
    count = await service.tenant_agent_count(session, tenant_id=tenant_id)
    return AgentCount(tenant_id=tenant_id, agents=count)


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 422),
    summary="Delete an agent",
)
async def delete_agent(agent: OwnedAgent, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Delete one of the caller's agents."""
    await service.delete_agent(session, runtime=runtime, agent=agent)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _collect(items: AsyncIterator[StreamItem]) -> dict[str, Any]:
    parts: list[str] = []
    calls: list[dict[str, Any]] = []
    try:
        async for item in items:
            if isinstance(item, TextDelta):
                parts.append(item.text)
            elif isinstance(item, ToolCall):
                calls.append(_tool_call(item))
            elif isinstance(item, StreamEnd):
                result = _result("".join(parts), item)
                if calls:
                    result["tool_calls"] = calls
                return result
    finally:
        await items.aclose()  # type: ignore[attr-defined]
    raise ProblemError("The provider ended without finishing.")


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def _result(content: str, end: StreamEnd) -> dict[str, Any]:
    return {
        "content": content,
        "usage": {"input_tokens": end.input_tokens, "output_tokens": end.output_tokens},
        "model": end.model,
        "finish_reason": end.finish_reason,
    }


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | None:
    """The work's result, or None when the client left first (the work is then cancelled,
    which closes the upstream call: no tokens paid for nobody)."""
    return await until_first(work, client_gone(request.receive))


def _event(name: str, data: Any) -> bytes:
    return encode_event(json.dumps(data, separators=(",", ":")), event=name)


async def _sse(
    first: StreamItem, items: AsyncIterator[StreamItem], citations: list[dict[str, Any]]
) -> AsyncIterator[bytes]:
    """SSE frames; when the client goes away the response cancels this, which closes the upstream.
    The `done` event carries the knowledge sources the reply was given (`citations`), if any.

    Deltas that arrived together upstream go out in one write (one event each, fewer syscalls).
    """
    OPEN_STREAMS.labels("agents").inc()
    frames: list[bytes] = []
    try:
        item: StreamItem | None = first
        while item is not None:
            if isinstance(item, StreamStart):
                item = await anext(items, None)
                continue
            if isinstance(item, TextDelta):
                frames.append(_event("delta", {"content": item.text}))
                if item.more:
                    item = await anext(items, None)
                    continue
            elif isinstance(item, ToolCall):
                # Calls come together just before the end: one write with the `done` event.
                frames.append(_event("tool_call", _tool_call(item)))
                item = await anext(items, None)
                continue
            else:
                frames.append(
                    _event(
                        "done",
                        {
                            "usage": {
                                "input_tokens": item.input_tokens,
                                "output_tokens": item.output_tokens,
                            },
                            "finish_reason": item.finish_reason,
                            "model": item.model,
                            **({"citations": citations} if citations else {}),
                        },
                    )
                )
            yield b"".join(frames)
            frames.clear()
            item = await anext(items, None)
        if frames:
            yield b"".join(frames)
    except ProblemError as problem:
        frames.append(_event("error", problem.to_dict()))
        yield b"".join(frames)
    finally:
        OPEN_STREAMS.labels("agents").dec()
        await items.aclose()  # type: ignore[attr-defined]
