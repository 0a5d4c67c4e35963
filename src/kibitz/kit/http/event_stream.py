"""Endless streamed answers (server-sent events, relayed bodies, WebSockets) that stop when the
client leaves: the kit's one "until the client leaves or the stream ends" race.

uvicorn announces ASGI spec 2.3, so Starlette's `StreamingResponse` watches for the client's
disconnect in an anyio task group (two tasks under a cancel scope). The same watch in plain
asyncio tasks costs ~60 µs less CPU per response (measured: 137-150 against 56-58 µs for a
22-event stream, without the network), and every chat reply is streamed twice (agents, chat).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

Result = TypeVar("Result")


async def until_first(work: Awaitable[Result], stop: Awaitable[object]) -> Result | None:
    """The work's result, or None when `stop` finishes first (the work is then cancelled, which
    closes whatever it reads from). Whichever finishes first decides: its error is raised; the
    other is cancelled and awaited before this returns."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop)
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work_task, stop_task):
            task.cancel()
        await asyncio.gather(work_task, stop_task, return_exceptions=True)
    if work_task.done() and not work_task.cancelled():
        return work_task.result()
    if stop_task.done() and not stop_task.cancelled() and stop_task.exception() is not None:
        raise stop_task.exception()  # type: ignore[misc]
    return None


async def client_gone(receive: Receive) -> None:
    """Until the HTTP client disconnects (other messages, such as body parts, are dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(relay: Awaitable[None], receive: Receive) -> None:
    """Run the relay until it ends or the client disconnects, whichever comes first (the relay
    is then cancelled); the relay's error is raised."""
    await until_first(relay, client_gone(receive))


class EventStreamResponse(StreamingResponse):
    """A `StreamingResponse` whose body stops (cancelled) as soon as the client leaves."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await until_disconnect(self.stream_response(send), receive)
        if self.background is not None:
            await self.background()
