"""Every route of a kit app refuses a body over its limit (413, before reading it) and a JSON
body that is not sent as JSON (415)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from kibitz.kit.app import create_service_app
from kibitz.kit.http.fast_routes import fast_route
from kibitz.kit.http.request_bodies import DEFAULT_MAX_BODY_BYTES
from kibitz.kit.platform import Platform
from tests.fixtures.serving import serving

router = APIRouter(prefix="/demo")
# A route whose limit comes from a setting, included with it (as knowledge's uploads).
uploads = APIRouter(prefix="/demo")
JSON = {"Content-Type": "application/json"}


class Note(BaseModel):
    text: str


@router.post("/notes")
async def create_note(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


@router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    return {"length": len(await request.body())}


@router.post("/big", max_body_size=DEFAULT_MAX_BODY_BYTES * 4)
async def big(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


@router.post("/fast", max_body_size=DEFAULT_MAX_BODY_BYTES * 2)
@fast_route()
async def fast(note: Note) -> Response:
    return JSONResponse({"length": len(note.text)})


@uploads.post("/things/{thing_id}/files")
async def upload(thing_id: str, request: Request) -> dict[str, int]:
    return {"length": len(await request.body())}


@pytest.fixture
async def demo() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(name="demo", platform=Platform(), routers=[router])
    app.include_router(uploads, max_body_size=DEFAULT_MAX_BODY_BYTES * 8)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


def _note(size: int) -> bytes:
    return b'{"text": "' + b"x" * (size - 12) + b'"}'


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 4096):
        yield b"x" * 4096


async def test_a_body_within_the_route_limit_is_served(demo: httpx.AsyncClient) -> None:
    near = DEFAULT_MAX_BODY_BYTES - 100
    assert (await demo.post("/demo/notes", content=_note(near), headers=JSON)).status_code == 200
    big = await demo.post("/demo/big", content=_note(DEFAULT_MAX_BODY_BYTES * 3), headers=JSON)
    assert big.status_code == 200
    fast = await demo.post("/demo/fast", content=_note(DEFAULT_MAX_BODY_BYTES + 10), headers=JSON)
    assert fast.status_code == 200
    upload = await demo.post("/demo/things/a/files", content=b"x" * DEFAULT_MAX_BODY_BYTES * 5)
    assert upload.json() == {"length": DEFAULT_MAX_BODY_BYTES * 5}


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/demo/notes", DEFAULT_MAX_BODY_BYTES),
        ("/demo/raw", DEFAULT_MAX_BODY_BYTES),
        ("/demo/big", DEFAULT_MAX_BODY_BYTES * 4),
        ("/demo/fast", DEFAULT_MAX_BODY_BYTES * 2),
        ("/demo/things/a/files", DEFAULT_MAX_BODY_BYTES * 8),
    ],
)
async def test_a_body_over_the_route_limit_is_413_whether_declared_or_chunked(
    demo: httpx.AsyncClient, path: str, limit: int
) -> None:
    declared = await demo.post(path, content=_note(limit + 1), headers=JSON)
    chunked = await demo.post(path, content=_chunks(limit + 8192), headers=JSON)
    for answer in (declared, chunked):
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == f"The request body may hold at most {limit} bytes."
        assert answer.headers["x-request-id"]


async def test_a_route_without_a_body_refuses_a_declared_one_over_the_default(
    demo: httpx.AsyncClient,
) -> None:
    answer = await demo.post("/healthz", content=b"x" * (DEFAULT_MAX_BODY_BYTES + 1))
    assert answer.status_code == 413


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    demo: httpx.AsyncClient,
) -> None:
    # The head alone: a server that read the body would wait for it forever.
    url = httpx.URL(str(demo.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"POST /demo/notes HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/json"]
)
@pytest.mark.parametrize("path", ["/demo/notes", "/demo/fast"])
async def test_a_json_body_not_sent_as_json_is_415(
    demo: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await demo.post(path, content=b'{"text": "hi"}', headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.json()["type"].endswith("/unsupported-media-type")
    sent_as_json = await demo.post(
        path, content=b'{"text": "hi"}', headers={"Content-Type": "application/json"}
    )
    assert sent_as_json.status_code == 200
