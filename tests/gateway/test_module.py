"""The gateway app itself: probes, request ids and its own metrics, closed to the public."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.conftest import Harness, start_harness


async def test_health_and_readiness_answer(harness: Harness) -> None:
    assert (await harness.http.get("/healthz")).json() == {"status": "ok"}
    ready = await harness.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.headers["x-request-id"]


async def test_the_gateways_own_metrics_are_hidden_without_the_scrape_token(
    harness: Harness,
) -> None:
    for headers in ({}, {"Authorization": "Bearer guess"}, harness.auth()):
        response = await harness.http.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_scraper_with_the_token_reads_the_metrics(tmp_path: Path) -> None:
    env = {"KIBITZ_GATEWAY_METRICS_TOKEN": "scrape-me", "KIBITZ_WEB_DIST": str(tmp_path)}
    async with start_harness(services=("auth",), env=env) as running:
        response = await running.http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert response.status_code == 200
        assert "kibitz_http_requests_total" in response.text
        assert (await running.http.get("/metrics")).status_code == 404


async def test_a_wrong_method_on_a_gateway_route_is_a_problem(harness: Harness) -> None:
    response = await harness.http.post("/healthz")
    assert response.status_code in (404, 405)
    assert response.headers["content-type"] == "application/problem+json"
