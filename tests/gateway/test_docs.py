"""The API reference: each service's OpenAPI document, and one page listing them all."""

from __future__ import annotations

from tests.gateway.conftest import Harness


async def test_each_services_openapi_document_is_public(harness: Harness) -> None:
    response = await harness.http.get("/users/openapi.json")
    assert response.status_code == 200
    assert "/users/things/{thing_id}" in response.json()["paths"]


async def test_the_openapi_document_through_the_gateway_leaves_out_internal_routes(
    harness: Harness,
) -> None:
    upstream = harness.upstreams["users"].openapi()
    assert "/users/internal/things" in upstream["paths"]
    document = (await harness.http.get("/users/openapi.json")).json()
    assert "/users/internal/things" not in document["paths"]
    assert "/users/things/{thing_id}" in document["paths"]
    assert document["components"] == upstream["components"]


async def test_the_reference_page_lists_every_service_and_its_routes(harness: Harness) -> None:
    response = await harness.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "/users/things/{thing_id}" in page
    assert "Read one thing" in page
    for service in ("auth", "users", "tenants", "agents", "chat", "knowledge"):
        assert f'id="{service}"' in page
    assert "The tenants service is not part of this deployment." in page
    # Self-contained: no scripts from anywhere.
    assert "<script" not in page


async def test_the_reference_page_leaves_out_routes_the_gateway_never_routes(
    harness: Harness,
) -> None:
    page = (await harness.http.get("/docs")).text
    assert "/users/things/{thing_id}" in page
    assert "/users/internal/things" not in page
    assert "List things for other services" not in page
    # The gateway indeed refuses it: the page would only have pointed at a 404.
    assert (await harness.http.get("/users/internal/things")).status_code == 404
