"""problem+json on every error path of an app built with create_service_app, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from kibitz.kit.app import create_service_app
from kibitz.kit.errors import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    ServiceUnavailable,
    TooManyRequests,
    problem_responses,
)
from kibitz.kit.platform import Platform
from tests.fixtures.serving import serving

router = APIRouter(prefix="/demo")


class Item(BaseModel):
    name: str = Field(max_length=10)
    count: int


@router.get("/boom", responses=problem_responses(500))
async def boom() -> None:
    raise RuntimeError("database password is hunter2 at /srv/secret.py line 7")


@router.get("/conflict", responses=problem_responses(409))
async def conflict() -> None:
    raise Conflict("That name is taken.", extra={"field": "name"})


@router.get("/limited", responses=problem_responses(429))
async def limited() -> None:
    raise TooManyRequests("Slow down.", retry_after=7)


@router.get("/unavailable", responses=problem_responses(503))
async def unavailable() -> None:
    raise ServiceUnavailable("Try later.")


@router.get("/teapot")
async def teapot() -> None:
    raise HTTPException(status_code=418, detail="I'm a teapot")


@router.post("/items", status_code=201, responses=problem_responses(422))
async def create_item(item: Item) -> dict[str, Any]:
    return item.model_dump()


@router.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, Any]:
    return {"id": item_id}


@pytest.fixture(scope="module")
async def demo() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(name="demo", platform=Platform(), routers=[router])
    async with serving(app) as url, httpx.AsyncClient(base_url=url, trust_env=False) as client:
        yield client


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    return body


async def test_an_unhandled_exception_answers_a_bare_500(demo: httpx.AsyncClient) -> None:
    response = await demo.get("/demo/boom")
    body = problem(response, 500)
    assert set(body) == {"type", "title", "status", "detail"}
    for leak in ("hunter2", "secret", "RuntimeError", "Traceback", "line 7"):
        assert leak not in response.text


async def test_domain_errors_carry_their_status_headers_and_extra(
    demo: httpx.AsyncClient,
) -> None:
    body = problem(await demo.get("/demo/conflict"), 409)
    assert body["detail"] == "That name is taken."
    assert body["field"] == "name"
    limited = await demo.get("/demo/limited")
    problem(limited, 429)
    assert limited.headers["retry-after"] == "7"
    unavailable = await demo.get("/demo/unavailable")
    problem(unavailable, 503)
    assert int(unavailable.headers["retry-after"]) > 0


async def test_unknown_routes_and_methods_answer_problems(demo: httpx.AsyncClient) -> None:
    problem(await demo.get("/demo/nowhere"), 404)
    body = problem(await demo.delete("/demo/boom"), 405)
    assert body["type"].endswith("method-not-allowed")
    problem(await demo.get("/demo/teapot"), 418)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"name": "x"}', {"content-type": "application/json"}),
        (b'{"name": 5, "count": "many"}', {"content-type": "application/json"}),
        (b'{"name": "far too long a name", "count": 1}', {"content-type": "application/json"}),
        (b"{broken", {"content-type": "application/json"}),
        (b"", {}),
        (b"[]", {"content-type": "application/json"}),
    ],
    ids=["missing field", "wrong types", "too long", "not json", "no body", "array"],
)
async def test_bad_input_answers_422_with_field_errors(
    demo: httpx.AsyncClient, content: bytes, headers: dict[str, str]
) -> None:
    body = problem(await demo.post("/demo/items", content=content, headers=headers), 422)
    assert body["errors"]
    assert all({"field", "message"} <= set(error) for error in body["errors"])


async def test_valid_input_passes(demo: httpx.AsyncClient) -> None:
    response = await demo.post("/demo/items", json={"name": "ok", "count": 2})
    assert response.status_code == 201


def test_problem_responses_document_problem_json() -> None:
    documented = problem_responses(401, 429)
    assert set(documented) == {401, 429}
    content = documented[429]["content"][PROBLEM_MEDIA_TYPE]
    assert content["example"]["status"] == 429
    assert set(content["schema"]["required"]) == {"type", "title", "status", "detail"}


async def test_the_documented_422_is_the_problem_the_app_answers(demo: httpx.AsyncClient) -> None:
    # A route that declares no 422 of its own: FastAPI would document its default one.
    answer = await demo.get("/demo/items/not-a-number")
    document = (await demo.get("/demo/openapi.json")).json()
    documented = document["paths"]["/demo/items/{item_id}"]["get"]["responses"]["422"]
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert list(documented["content"]) == [PROBLEM_MEDIA_TYPE]


async def test_error_answers_carry_the_request_id(demo: httpx.AsyncClient) -> None:
    for path in ("/demo/conflict", "/demo/nowhere", "/demo/boom"):
        response = await demo.get(path, headers={"X-Request-ID": "trace-me"})
        assert response.headers.get("x-request-id") == "trace-me", path
