"""EventStreamResponse over real HTTP: streamed as produced, stopped when the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kibitz.kit.http.event_stream import EventStreamResponse
from tests.fixtures.serving import serving


class Events:
    """An endless event source that records what happened to it."""

    def __init__(self) -> None:
        self.produced = 0
        self.go_on = asyncio.Event()
        self.closed = asyncio.Event()
        self.background_ran = asyncio.Event()

    async def body(self) -> AsyncIterator[bytes]:
        try:
            while True:
                self.produced += 1
                yield f"event: tick\ndata: {self.produced}\n\n".encode()
                # The next event only once the client has seen this one: nothing is buffered.
                await self.go_on.wait()
                self.go_on.clear()
        finally:
            self.closed.set()

    async def finite(self) -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"data: {number}\n\n".encode()

    async def after(self) -> None:
        self.background_ran.set()


def app_for(events: Events) -> Starlette:
    async def endless(_: Request) -> Response:
        return EventStreamResponse(events.body(), media_type="text/event-stream")

    async def finite(_: Request) -> Response:
        return EventStreamResponse(
            events.finite(), media_type="text/event-stream", background=BackgroundTask(events.after)
        )

    return Starlette(routes=[Route("/endless", endless), Route("/finite", finite)])


async def test_events_arrive_one_by_one_and_a_leaving_client_stops_the_body() -> None:
    events = Events()
    async with serving(app_for(events)) as base, httpx.AsyncClient(base_url=base) as http:
        async with http.stream("GET", "/endless") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(line)
                    if len(seen) == 3:
                        break
                    events.go_on.set()
            assert seen == ["data: 1", "data: 2", "data: 3"]
        # The client is gone: the body is cancelled (its cleanup runs) without another event.
        await asyncio.wait_for(events.closed.wait(), timeout=5)
        assert events.produced == 3


async def test_a_finite_stream_ends_and_runs_its_background_task() -> None:
    events = Events()
    async with serving(app_for(events)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/finite")
        assert response.status_code == 200
        assert response.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        await asyncio.wait_for(events.background_ran.wait(), timeout=5)
