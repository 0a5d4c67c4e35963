"""The routing table."""

from __future__ import annotations

import pytest

from kibitz.gateway.routing import cost_of, is_never_routed, route_for


@pytest.mark.parametrize("service", ["auth", "users", "tenants", "chat", "agents"])
def test_each_public_prefix_routes_to_its_service(service: str) -> None:
    route = route_for("GET", f"/{service}/anything/here")
    assert route is not None and route.service == service


@pytest.mark.parametrize("path", ["/", "/assets/app.js", "/login", "/authx/me", "/docs"])
def test_paths_outside_the_service_prefixes_are_not_api_routes(path: str) -> None:
    assert route_for("GET", path) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("GET", "/auth/jwks"),
        ("GET", "/chat/openapi.json"),
        ("GET", "/auth/openapi.json"),
        ("GET", "/auth/sso/providers"),
        ("GET", "/auth/sso/google/start"),
        ("GET", "/auth/sso/0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10/callback"),
    ],
)
def test_public_routes_need_no_token(method: str, path: str) -> None:
    route = route_for(method, path)
    assert route is not None and route.public


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/me"),
        ("GET", "/auth/login"),
        ("POST", "/auth/jwks"),
        ("GET", "/users/me"),
        ("GET", "/auth/sso/tenant"),
        ("PUT", "/auth/sso/tenant"),
        ("POST", "/auth/sso/google/callback"),
        ("GET", "/auth/sso/google/start/more"),
        ("GET", "/auth/sso/google/other"),
    ],
)
def test_everything_else_needs_a_token(method: str, path: str) -> None:
    route = route_for(method, path)
    assert route is not None and not route.public


def test_only_the_credential_routes_are_limited_per_ip() -> None:
    assert route_for("POST", "/auth/login").ip_limited  # type: ignore[union-attr]
    assert not route_for("GET", "/auth/jwks").ip_limited  # type: ignore[union-attr]
    assert not route_for("GET", "/auth/me").ip_limited  # type: ignore[union-attr]
    assert route_for("GET", "/auth/sso/google/start").ip_limited  # type: ignore[union-attr]
    assert route_for("GET", "/auth/sso/google/callback").ip_limited  # type: ignore[union-attr]


def test_only_the_sso_start_and_callback_are_browser_navigations_to_the_api() -> None:
    """The gateway proxies these even when the browser asks for HTML (it is not an app page)."""
    assert route_for("GET", "/auth/sso/google/start").navigation  # type: ignore[union-attr]
    assert route_for("GET", "/auth/sso/google/callback").navigation  # type: ignore[union-attr]
    assert not route_for("GET", "/auth/sso/providers").navigation  # type: ignore[union-attr]
    assert not route_for("GET", "/chat/abc").navigation  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/auth/internal/users/1",
        "/tenants/internal/tenants/x/plan",
        "/chat/internal",
        "/auth/../metrics",
        "/auth/./internal/x",
    ],
)
def test_metrics_internal_routes_and_dot_segments_are_never_routed(path: str) -> None:
    assert is_never_routed(path)


def test_ordinary_paths_are_routed() -> None:
    assert not is_never_routed("/auth/me")
    assert not is_never_routed("/chat/internals-of-chat")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/chat/send"),
        ("POST", "/chat/messages/0b6f/regenerate"),
        ("POST", "/chat/messages/0b6f/edit/"),
        ("POST", "/agents/respond"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/knowledge/collections/c1/documents"),
        ("POST", "/knowledge/search"),
    ],
)
def test_model_and_indexing_work_is_the_work_class(method: str, path: str) -> None:
    assert cost_of(method, path) == "work"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/chat/send"),
        ("GET", "/chat/history"),
        ("GET", "/chat/chats"),
        ("GET", "/agents"),
        ("POST", "/agents"),
        ("POST", "/chat/messages/0b6f/regenerate/extra"),
        ("POST", "/chat/messages/a/b/edit"),
        ("GET", "/knowledge/collections/c1/documents"),
        ("GET", "/tenants/plans"),
    ],
)
def test_everything_else_is_a_read(method: str, path: str) -> None:
    assert cost_of(method, path) == "read"


def test_the_route_carries_its_cost_class() -> None:
    assert route_for("POST", "/chat/send").cost == "work"  # type: ignore[union-attr]
    assert route_for("GET", "/chat/chats").cost == "read"  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions"])
def test_the_openai_compatible_prefix_belongs_to_the_agents_service(path: str) -> None:
    route = route_for("POST", path)
    assert route is not None and route.service == "agents" and not route.public


def test_the_openai_compatible_prefix_has_no_openapi_document_of_its_own() -> None:
    route = route_for("GET", "/v1/openapi.json")
    assert route is not None and not route.public
