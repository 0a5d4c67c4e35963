from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from kibitz.kit.app import create_service_app
from kibitz.kit.direct_routes import json_body
from kibitz.kit.errors import Conflict
from kibitz.kit.platform import Platform
from tests.fixtures.serving import serving

router = APIRouter(prefix="/demo")


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=20)


async def greet(greeting: Greeting) -> Response:
    if greeting.name == "conflict":
        raise Conflict("Taken.")
    if greeting.name == "crash":
        raise RuntimeError("secret internals")
    return JSONResponse({"hello": greeting.name})


@router.post("/greet")
async def greet_route(greeting: Greeting) -> Response:
    response = await greet(greeting)
    response.headers["x-served-by"] = "fastapi"
    return response


async def greet_directly(request: Request) -> Response:
    response = await greet(await json_body(request, Greeting, max_bytes=64))
    response.headers["x-served-by"] = "direct"
    return response


@pytest.fixture
async def demo() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(
        name="demo",
        platform=Platform(),
        routers=[router],
        direct_routes={("POST", "/demo/greet"): greet_directly},
    )
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_a_direct_route_is_answered_by_its_endpoint_with_the_kit_conventions(
    demo: httpx.AsyncClient,
) -> None:
    answer = await demo.post("/demo/greet", json={"name": "ada"}, headers={"X-Request-ID": "r-1"})
    assert answer.status_code == 200
    assert answer.json() == {"hello": "ada"}
    assert answer.headers["x-served-by"] == "direct"
    assert answer.headers["x-request-id"] == "r-1"
    metrics = (await demo.get("/metrics")).text
    assert 'route="/demo/greet",service="demo",status="200"' in metrics
    # Everything else still goes through FastAPI.
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
    answer = await demo.post(
        "/demo/greet", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in [error["field"] for error in answer.json()["errors"]]


async def test_a_body_without_a_length_is_cut_off_at_the_cap(demo: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 32

    answer = await demo.post("/demo/greet", content=chunks())
    assert answer.status_code == 413


async def test_errors_are_problems_and_crashes_reveal_nothing(demo: httpx.AsyncClient) -> None:
    conflict = await demo.post("/demo/greet", json={"name": "conflict"})
    crash = await demo.post("/demo/greet", json={"name": "crash"})
    assert (conflict.status_code, conflict.json()["detail"]) == (409, "Taken.")
    assert crash.status_code == 500
    assert crash.headers["content-type"].startswith("application/problem+json")
    assert "secret" not in crash.text
    assert crash.headers["x-request-id"]
