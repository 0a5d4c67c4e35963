"""Fast routes: declared once as FastAPI routes, served by the kit past FastAPI's machinery, and
answering exactly as FastAPI answers the same requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from kibitz.kit.app import create_service_app
from kibitz.kit.errors import Conflict, Unauthorized
from kibitz.kit.http.event_stream import EventStreamResponse
from kibitz.kit.http.fast_routes import FastRouteError, fast_route
from kibitz.kit.platform import Platform
from kibitz.services.agents.api import respond
from kibitz.services.chat.api import send_message
from tests.fixtures.serving import serving

router = APIRouter(prefix="/demo")


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=20)
    stream: bool = False


async def caller(request: Request) -> str:
    """Like `current_principal`: a dependency of the request that may refuse it."""
    token = request.headers.get("authorization", "")
    if not token.startswith("Bearer "):
        raise Unauthorized("Sign in first.")
    return token.removeprefix("Bearer ")


async def greeter(request: Request) -> str:
    return "hello"


Caller = Annotated[str, Depends(caller)]
Greeter = Annotated[str, Depends(greeter)]


async def _events(name: str) -> AsyncIterator[bytes]:
    for piece in ("a", "b"):
        await asyncio.sleep(0)
        yield f"data: {name}-{piece}\n\n".encode()


@router.post("/greet", status_code=201, max_body_size=64)
@fast_route()
async def greet(
    greeting: Greeting,
    who: Caller,
    request: Request,
    word: Greeter,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    if greeting.name == "conflict":
        raise Conflict("Taken.")
    if greeting.name == "crash":
        raise RuntimeError("secret internals")
    if greeting.stream:
        return EventStreamResponse(_events(greeting.name), media_type="text/event-stream")
    served_by = "fastapi" if "fastapi_middleware_astack" in request.scope else "kit"
    body = {word: greeting.name, "caller": who, "key": idempotency_key}
    return JSONResponse(body, status_code=201, headers={"x-served-by": served_by})


def _demo(*, fast: bool) -> FastAPI:
    return create_service_app(name="demo", platform=Platform(), routers=[router], fast_routes=fast)


@pytest.fixture
async def demo() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(_demo(fast=True)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


AUTH = {"Authorization": "Bearer ada-token", "X-Request-ID": "r-1"}
JSON = {**AUTH, "Content-Type": "application/json"}


async def _chunked(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 32):
        yield b"x" * 32


# (name, headers, body): the same requests go to both paths.
REQUESTS: list[tuple[str, dict[str, str], bytes | None]] = [
    ("good", JSON, b'{"name": "ada"}'),
    ("good with a header", {**JSON, "Idempotency-Key": "k-1"}, b'{"name": "ada"}'),
    (
        "json with charset",
        {**AUTH, "Content-Type": "application/json; charset=utf-8"},
        b'{"name": "a"}',
    ),
    (
        "problem json type",
        {**AUTH, "Content-Type": "application/merge-patch+json"},
        b'{"name": "a"}',
    ),
    ("no token", {"Content-Type": "application/json", "X-Request-ID": "r-1"}, b'{"name": "ada"}'),
    ("no token and bad json", {"Content-Type": "application/json", "X-Request-ID": "r-1"}, b"{"),
    ("not json", JSON, b'{"name": "x"'),
    ("not utf-8", JSON, b"\xff\x1e\xffM"),
    ("wrong type", JSON, b'{"name": 5}'),
    ("extra field", JSON, b'{"name": "ada", "age": 3}'),
    ("missing field", JSON, b"{}"),
    ("a list", JSON, b"[1, 2]"),
    ("empty body", JSON, b""),
    ("no content type", AUTH, b'{"name": "ada"}'),
    ("text content type", {**AUTH, "Content-Type": "text/plain"}, b'{"name": "ada"}'),
    ("too long by its length", JSON, b'{"name": "' + b"x" * 100 + b'"}'),
    ("too long and no token", {"Content-Type": "application/json", "X-Request-ID": "r"}, b"x" * 99),
    ("domain error", JSON, b'{"name": "conflict"}'),
    ("crash", JSON, b'{"name": "crash"}'),
    ("streamed answer", JSON, b'{"name": "s", "stream": true}'),
]


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    skip = {"date", "x-served-by"}
    headers = sorted((k, v) for k, v in response.headers.items() if k not in skip)
    return response.status_code, headers, response.content


async def test_both_paths_answer_the_same_requests_identically() -> None:
    answers: dict[bool, list[tuple[int, list[tuple[str, str]], bytes]]] = {}
    served: dict[bool, set[str]] = {}
    for fast in (True, False):
        async with serving(_demo(fast=fast)) as url, httpx.AsyncClient(base_url=url) as client:
            answers[fast] = []
            served[fast] = set()
            for _, headers, body in REQUESTS:
                response = await client.post("/demo/greet", content=body, headers=headers)
                answers[fast].append(_comparable(response))
                served[fast].add(response.headers.get("x-served-by", ""))
            chunked = await client.post("/demo/greet", content=_chunked(320), headers=JSON)
            answers[fast].append(_comparable(chunked))
    assert served == {True: {"kit", ""}, False: {"fastapi", ""}}
    for (name, _, _), fast, plain in zip(REQUESTS, answers[True], answers[False], strict=False):
        assert fast == plain, name
    assert answers[True][-1] == answers[False][-1]
    statuses = dict(
        zip((name for name, _, _ in REQUESTS), (a[0] for a in answers[True]), strict=False)
    )
    assert statuses["good"] == 201 and statuses["no token"] == 401
    assert statuses["not json"] == 422 and statuses["too long by its length"] == 413
    assert statuses["not utf-8"] == 400
    assert statuses["crash"] == 500 and answers[True][-1][0] == 413


async def test_a_fast_route_is_served_by_the_kit_with_the_kit_conventions(
    demo: httpx.AsyncClient,
) -> None:
    answer = await demo.post("/demo/greet", json={"name": "ada"}, headers=AUTH)
    assert answer.status_code == 201
    assert answer.json() == {"hello": "ada", "caller": "ada-token", "key": None}
    assert answer.headers["x-served-by"] == "kit"
    assert answer.headers["x-request-id"] == "r-1"
    metrics = (await demo.get("/metrics")).text
    assert 'route="/demo/greet",service="demo",status="201"' in metrics
    # Everything else still goes through FastAPI, which documents the fast route too.
    assert (await demo.get("/healthz")).json() == {"status": "ok"}
    assert (await demo.get("/demo/greet")).status_code == 405
    assert "/demo/greet" in (await demo.get("/demo/openapi.json")).json()["paths"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"name": "x"', 422, "body"),  # not JSON
        (b'{"name": 5}', 422, "name"),
        (b'{"name": "ada", "age": 3}', 422, "age"),
        (b"{}", 422, "name"),
        (b'{"name": "' + b"x" * 100 + b'"}', 413, None),
    ],
)
async def test_a_bad_body_answers_a_problem_naming_what_is_wrong(
    demo: httpx.AsyncClient, body: bytes, status: int, field: str | None
) -> None:
    answer = await demo.post("/demo/greet", content=body, headers=JSON)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in [error["field"] for error in answer.json()["errors"]]


async def test_a_body_without_a_length_is_cut_off_at_the_cap(demo: httpx.AsyncClient) -> None:
    answer = await demo.post("/demo/greet", content=_chunked(320), headers=AUTH)
    assert answer.status_code == 413


async def test_errors_are_problems_and_crashes_reveal_nothing(demo: httpx.AsyncClient) -> None:
    conflict = await demo.post("/demo/greet", json={"name": "conflict"}, headers=AUTH)
    crash = await demo.post("/demo/greet", json={"name": "crash"}, headers=AUTH)
    assert (conflict.status_code, conflict.json()["detail"]) == (409, "Taken.")
    assert crash.status_code == 500
    assert crash.headers["content-type"].startswith("application/problem+json")
    assert "secret" not in crash.text
    assert crash.headers["x-request-id"]


def test_a_route_the_fast_path_cannot_resolve_is_refused_when_the_app_is_built() -> None:
    odd = APIRouter()

    @odd.post("/odd/{item}")
    @fast_route()
    async def with_a_path_parameter(item: str, greeting: Greeting) -> Response:
        return Response()

    with pytest.raises(FastRouteError, match="/odd/"):
        create_service_app(name="odd", platform=Platform(), routers=[odd])


def test_the_hot_service_routes_are_declared_fast() -> None:
    from kibitz.kit.http import fast_routes

    assert send_message in fast_routes._FAST_ENDPOINTS
    assert respond in fast_routes._FAST_ENDPOINTS
