"""`/v1/models` and `/v1/chat/completions`: thin handlers over the agents service's own reply path
(`replies.prepare_reply`, `replies.reply_stream`), answering in OpenAI's wire format.

Every failure answers in OpenAI's error shape, never problem+json: these routes' clients are
OpenAI SDKs and the tools built on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from kibitz.kit.errors import (
    NotFound,
    ProblemError,
    UnsupportedMediaType,
    http_exception_problem,
    validation_problem,
)
from kibitz.kit.http.event_stream import EventStreamResponse
from kibitz.kit.http.request_bodies import declares_json
from kibitz.kit.jwt import Principal
from kibitz.kit.observability import OPEN_STREAMS
from kibitz.kit.openai_errors import openai_error_response, openai_problem_body
from kibitz.kit.security import current_principal
from kibitz.services.agents import replies, service
from kibitz.services.agents.errors import AgentNotFound
from kibitz.services.agents.openai_compat import wire
from kibitz.services.agents.openai_compat.metering import UsageMeter
from kibitz.services.agents.openai_compat.schemas import ChatCompletionRequest
from kibitz.services.agents.openai_compat.storing import CHAT_ID_HEADER, ChatKeeper, keeping
from kibitz.services.agents.providers.base import (
    StreamEnd,
    StreamItem,
    StreamStart,
    TextDelta,
    estimate_tokens,
)
from kibitz.services.agents.repository import AgentRepository
from kibitz.services.agents.schemas import ConversationMessage, RespondRequest
from kibitz.services.agents.service import AgentsRuntime

# Not in the agents' OpenAPI document: OpenAI's own API reference describes these routes.
router = APIRouter(prefix="/v1", include_in_schema=False)
# 16 MiB, as `/agents/respond`: far above what the configured limits let through (413).
_MAX_BODY_BYTES = 16 * 1024 * 1024
# The most agents a plan allows is 100; a model list is never paged.
_MAX_MODELS = 1000
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Handler = Callable[[Request], Awaitable[Response]]
# Keeps the whole reply as a chat (`store`), given its text and end.
Store = Callable[[str, StreamEnd], Awaitable[None]]


def _in_openai_shape(handler: Handler) -> Handler:
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except AgentNotFound as problem:
            return openai_error_response(problem, code="model_not_found")
        except ProblemError as problem:
            return openai_error_response(problem)

    answer.__doc__ = handler.__doc__
    return answer


async def _list_models(request: Request) -> Response:
    """The caller's agents as OpenAI models (`id` = the agent's id)."""
    principal = await current_principal(request)
    runtime: AgentsRuntime = request.app.state.agents
    async with runtime.database.transaction() as session:
        agents = await AgentRepository(session).list_for_user(
            tenant_id=principal.tenant_id, user_id=principal.user_id, limit=_MAX_MODELS, after=None
        )
    return JSONResponse(wire.model_list(agents))


async def _chat_completions(request: Request) -> Response:
    """One of the caller's agents answers the conversation, whole or streamed."""
    principal = await current_principal(request)
    body = await _completion_request(request)
    runtime: AgentsRuntime = request.app.state.agents
    meter: UsageMeter = request.app.state.usage_meter
    agent_id = await _agent_id(runtime, principal, body.model)
    prepared = await replies.prepare_reply(
        runtime=runtime,
        principal=principal,
        body=_respond_request(agent_id, body),
        temperature=body.temperature,
        max_output_tokens=body.output_token_limit,
    )
    completion_id = wire.new_completion_id()
    store, headers = _store(request, principal, agent_id, completion_id, body)
    # Only a request that can be answered counts against the quota. While the tenant has plenty
    # left, the answer starts before the reservation answers (it still counts, and a refusal
    # ends the answer); otherwise nothing reaches the client before it has.
    early = meter.plenty_left(principal.tenant_id)
    reservation = asyncio.ensure_future(meter.reserve(principal.tenant_id, key=completion_id))
    try:
        items = replies.reply_stream(runtime=runtime, prepared=prepared)
        # The model is asked while the quota answers.
        first = await (anext(items) if early else _after(reservation, anext(items), items))
    except BaseException:
        _settle(reservation)
        raise
    metered = _Metering(meter, principal, key=completion_id, messages=body.messages)
    if not body.stream:
        answer = _whole(first, items, completion_id, body.model, metered, reservation, store)
        return JSONResponse(await answer, headers=headers)
    writer = wire.ChunkWriter(
        completion_id=completion_id, model=body.model, include_usage=body.include_usage
    )
    return EventStreamResponse(
        _chunks(first, items, writer, metered, reservation, store),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **headers},
    )


def _store(
    request: Request,
    principal: Principal,
    agent_id: uuid.UUID,
    completion_id: str,
    body: ChatCompletionRequest,
) -> tuple[Store | None, dict[str, str]]:
    """How the exchange is kept as a chat (`store`, or a chat named by the header), and the
    header naming that chat; nothing when not asked for or when chat is not deployed."""
    keeper: ChatKeeper = request.app.state.chat_keeper
    keep = keeping(
        store=body.store, chat_header=request.headers.get(CHAT_ID_HEADER), messages=body.messages
    )
    if keep is None or not keeper.available:
        return None, {}

    async def store(reply: str, end: StreamEnd) -> None:
        await keeper.keep(
            keep,
            principal=principal,
            agent_id=agent_id,
            completion_id=completion_id,
            reply=reply,
            end=end,
        )

    return store, {"X-Kibitz-Chat-Id": str(keep.chat_id)}


async def _read_model(request: Request) -> Response:
    """One of the caller's agents as an OpenAI model (by id or unique name; 404 otherwise)."""
    principal = await current_principal(request)
    runtime: AgentsRuntime = request.app.state.agents
    model = str(request.path_params["model"])
    async with runtime.database.transaction() as session:
        agent_id = await service.find_agent_id(session, principal=principal, id_or_name=model)
        agent = await service.get_agent(session, principal=principal, agent_id=agent_id)
    return JSONResponse(wire.model_list([agent])["data"][0])


async def _no_such_route(request: Request) -> Response:
    """Anything else under /v1: OpenAI's 404, not a problem document."""
    raise NotFound(f"kibitz does not serve {request.method} {request.url.path}.")


list_models = _in_openai_shape(_list_models)
read_model = _in_openai_shape(_read_model)
# Not a kit fast route: those take one body model, which FastAPI would refuse as problem+json.
chat_completions = _in_openai_shape(_chat_completions)
router.add_api_route("/models", list_models, methods=["GET"])
router.add_api_route("/models/{model:path}", read_model, methods=["GET"])
router.add_api_route(
    "/chat/completions", chat_completions, methods=["POST"], max_body_size=_MAX_BODY_BYTES
)
router.add_api_route(
    "/{path:path}",
    _in_openai_shape(_no_such_route),
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
)


async def _completion_request(request: Request) -> ChatCompletionRequest:
    """The body, parsed here (not by FastAPI) so that a bad one is refused in OpenAI's shape."""
    if not declares_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    try:
        raw = await request.body()  # within the route's max_body_size
    except StarletteHTTPException as exc:
        raise http_exception_problem(exc, request.scope) from None
    try:
        return ChatCompletionRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_problem(exc.errors()) from None


async def _agent_id(runtime: AgentsRuntime, principal: Principal, model: str) -> uuid.UUID:
    """The agent `model` names. An id is checked by `prepare_reply` (cached, like every reply's
    agent); only a name needs the database."""
    try:
        return uuid.UUID(model)
    except ValueError:
        pass
    async with runtime.database.transaction() as session:
        return await service.find_agent_id(session, principal=principal, id_or_name=model)


def _respond_request(agent_id: uuid.UUID, body: ChatCompletionRequest) -> RespondRequest:
    try:
        return RespondRequest(
            agent_id=agent_id,
            messages=[
                ConversationMessage(role=message.kibitz_role, content=message.text)
                for message in body.messages
            ],
            stream=body.stream,
        )
    except ValidationError as exc:
        raise validation_problem(exc.errors()) from None


async def _after(
    reservation: asyncio.Future[None],
    first_item: Awaitable[StreamItem],
    items: AsyncIterator[StreamItem],
) -> StreamItem:
    """The stream's first item once the reservation is granted; a refusal stops the model."""
    first = asyncio.ensure_future(first_item)
    try:
        await reservation
    except BaseException:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await items.aclose()  # type: ignore[attr-defined]
        raise
    try:
        return await first
    except BaseException:
        await items.aclose()  # type: ignore[attr-defined]
        raise


def _settle(reservation: asyncio.Future[None]) -> None:
    """Leave a reservation nobody will wait for: cancelled if still out, its error retrieved."""
    if not reservation.done():
        reservation.cancel()
    elif not reservation.cancelled():
        reservation.exception()


class _Metering:
    """Counts one completion's tokens once: the provider's figures, or (a reply cut short) an
    estimate from what was asked and what streamed."""

    def __init__(
        self, meter: UsageMeter, principal: Principal, *, key: str, messages: list[Any]
    ) -> None:
        self._meter = meter
        self._tenant_id = principal.tenant_id
        self._key = key
        self._asked = sum(estimate_tokens(message.text) for message in messages)
        self._streamed: list[str] = []
        self._done = False

    def streamed(self, text: str) -> None:
        """A piece of the reply went out."""
        self._streamed.append(text)

    @property
    def text(self) -> str:
        """The reply so far."""
        return "".join(self._streamed)

    def finished(self, end: StreamEnd | None) -> None:
        """Record the tokens (once), whether the reply completed (`end`) or not."""
        if self._done:
            return
        self._done = True
        if end is not None:
            tokens = end.input_tokens + end.output_tokens
        else:
            tokens = self._asked + estimate_tokens(self.text)
        self._meter.record_later(self._tenant_id, key=self._key, tokens=tokens)


async def _whole(
    first: StreamItem,
    items: AsyncIterator[StreamItem],
    completion_id: str,
    model: str,
    metered: _Metering,
    reservation: asyncio.Future[None],
    store: Store | None,
) -> dict[str, Any]:
    end: StreamEnd | None = None
    try:
        item: StreamItem | None = first
        while item is not None:
            if reservation.done():
                reservation.result()  # a refusal stops the model
            if isinstance(item, TextDelta):
                metered.streamed(item.text)
            elif isinstance(item, StreamEnd):
                end = item
                break
            item = await anext(items, None)
        await reservation
        if end is not None and store is not None:
            await store(metered.text, end)
    finally:
        _settle(reservation)
        metered.finished(end)
        await items.aclose()  # type: ignore[attr-defined]
    if end is None:
        raise ProblemError("The provider ended without finishing.")
    return wire.completion(
        completion_id=completion_id,
        model=model,
        content=metered.text,
        reason=end.finish_reason,
        token_usage=wire.usage(end.input_tokens, end.output_tokens),
    )


async def _chunks(
    first: StreamItem,
    items: AsyncIterator[StreamItem],
    writer: wire.ChunkWriter,
    metered: _Metering,
    reservation: asyncio.Future[None],
    store: Store | None,
) -> AsyncIterator[bytes]:
    """SSE chunks; when the client goes away the response cancels this, which closes the model's
    stream. Deltas that arrived together go out in one write. A refused reservation (the answer
    started early) ends the stream with OpenAI's error chunk."""
    OPEN_STREAMS.labels("agents").inc()
    end: StreamEnd | None = None
    frames: list[bytes] = [writer.delta({"role": "assistant", "content": ""})]
    try:
        item: StreamItem | None = first
        while item is not None:
            if reservation.done():
                reservation.result()
            if isinstance(item, TextDelta):
                metered.streamed(item.text)
                frames.append(writer.delta({"content": item.text}))
                if item.more:
                    item = await anext(items, None)
                    continue
            elif isinstance(item, StreamEnd):
                await reservation
                if store is not None:
                    await store(metered.text, item)  # the client finds the chat at [DONE]
                end = item
                frames.append(
                    writer.end(
                        item.finish_reason, wire.usage(item.input_tokens, item.output_tokens)
                    )
                )
            elif not isinstance(item, StreamStart):
                raise AssertionError(f"unexpected stream item {item!r}")
            yield b"".join(frames)
            frames.clear()
            if end is not None:
                break
            item = await anext(items, None)
    except ProblemError as problem:
        frames.append(writer.error(openai_problem_body(problem)))
        yield b"".join(frames)
    finally:
        OPEN_STREAMS.labels("agents").dec()
        _settle(reservation)
        metered.finished(end)
        with contextlib.suppress(Exception):
            await items.aclose()  # type: ignore[attr-defined]
