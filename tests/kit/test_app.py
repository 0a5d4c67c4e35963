from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from kibitz.kit.app import create_service_app
from kibitz.kit.platform import Platform
from tests.fixtures.serving import serving

router = APIRouter(prefix="/demo")


@router.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@pytest.fixture
async def demo_url() -> AsyncIterator[str]:
    healthy = {"value": True}

    async def dependency_check() -> None:
        if not healthy["value"]:
            raise ConnectionError("down")

    app = create_service_app(
        name="demo",
        platform=Platform(),
        routers=[router],
        readiness_checks={"dependency": dependency_check},
    )
    app.state.healthy = healthy
    async with serving(app) as url:
        yield url


async def test_a_request_id_is_kept_or_made(demo_url: str) -> None:
    async with httpx.AsyncClient(base_url=demo_url) as client:
        kept = await client.get("/demo/hello", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/demo/hello")
    assert kept.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32


async def test_probes_and_metrics_answer(demo_url: str) -> None:
    async with httpx.AsyncClient(base_url=demo_url) as client:
        await client.get("/demo/hello")
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"] == {"dependency": "ok"}
    assert (
        'kibitz_http_requests_total{method="GET",route="/demo/hello",service="demo"' in metrics.text
    )


async def test_openapi_is_published_under_the_service_prefix(demo_url: str) -> None:
    async with httpx.AsyncClient(base_url=demo_url) as client:
        document = (await client.get("/demo/openapi.json")).json()
    assert "/demo/hello" in document["paths"]


async def test_unknown_routes_and_methods_answer_problem_json(demo_url: str) -> None:
    async with httpx.AsyncClient(base_url=demo_url) as client:
        missing = await client.get("/demo/nothing")
        wrong_method = await client.delete("/demo/hello")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    assert wrong_method.status_code == 405
    assert wrong_method.json()["title"] == "Method Not Allowed"
