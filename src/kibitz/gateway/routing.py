"""The routing table: which service a public path belongs to, and which paths need no token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Public prefixes, each owned by the service of the same name.
ROUTED_SERVICES: frozenset[str] = frozenset(
    {"auth", "users", "tenants", "chat", "agents", "knowledge", "billing"}
)
# Prefixes owned by a service of another name: OpenAI-compatible clients call `/v1/…`.
PREFIX_OWNERS: dict[str, str] = {"v1": "agents"}
ROUTED_PREFIXES: frozenset[str] = ROUTED_SERVICES | frozenset(PREFIX_OWNERS)
OPENAI_COMPATIBLE_PREFIX = "/v1/"

# (method, path) pairs anyone may call without an access token.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("GET", "/auth/jwks"),
        ("HEAD", "/auth/jwks"),
        # Stripe signs it; billing verifies the signature.
        ("POST", "/billing/webhook"),
    }
)
# The credential routes a client IP may call only so often (brute force, sign-up floods).
IP_LIMITED_ROUTES: frozenset[str] = frozenset(
    {"/auth/register", "/auth/login", "/auth/refresh", "/auth/logout"}
)

# What a request costs. "work" requests make a model or the indexer work and count against the
# plan's requests/min; every other authenticated request is a "read", counted against the
# per-user read limit, so that browsing never uses up the plan.
CostClass = Literal["work", "read"]
_ID = r"[^/]+"
WORK_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("POST", "/chat/send"),
        ("POST", f"/chat/messages/{_ID}/regenerate"),
        ("POST", f"/chat/messages/{_ID}/edit"),
        ("POST", "/agents/respond"),
        ("POST", "/v1/chat/completions"),
        ("POST", f"/knowledge/collections/{_ID}/documents"),
        ("POST", "/knowledge/search"),
    )
)

# Routes whose bodies may exceed the gateway's ordinary limit (`max_large_body_bytes` instead of
# `max_body_bytes`): a document upload, a whole conversation with its tool schemas.
LARGE_BODY_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        ("POST", "/agents/respond"),
        ("POST", "/v1/chat/completions"),
        ("POST", f"/knowledge/collections/{_ID}/documents"),
    )
)


def takes_large_body(method: str, path: str) -> bool:
    """Whether (method, path) is one of LARGE_BODY_ROUTES."""
    normalised = path.rstrip("/") or "/"
    return any(
        method == large_method and pattern.fullmatch(normalised)
        for large_method, pattern in LARGE_BODY_ROUTES
    )


# Single sign-on: sign-in options, and the browser's round trip through an identity provider
# (`/auth/sso/{provider}/start` and `/callback`), all before the person has any token.
SSO_PROVIDERS_PATH = "/auth/sso/providers"
SSO_NAVIGATIONS = ("start", "callback")


@dataclass(frozen=True, slots=True)
class Route:
    """Where one public request goes and what it needs first."""

    service: str
    public: bool
    ip_limited: bool
    cost: CostClass = "read"
    # An API route the browser navigates to (not a page of the web app): proxied even when it
    # asks for HTML.
    navigation: bool = False
    # The service's OpenAPI document: answered by the gateway, without internal routes.
    api_document: bool = False


def cost_of(method: str, path: str) -> CostClass:
    """ "work" when (method, path) is in WORK_ROUTES, "read" otherwise."""
    normalised = path.rstrip("/") or "/"
    for work_method, pattern in WORK_ROUTES:
        if method == work_method and pattern.fullmatch(normalised):
            return "work"
    return "read"


def _sso_navigation(method: str, path: str) -> bool:
    parts = path.split("/")  # "", "auth", "sso", provider, step
    return (
        method in ("GET", "HEAD")
        and len(parts) == 5
        and parts[1:3] == ["auth", "sso"]
        and bool(parts[3])
        and parts[4] in SSO_NAVIGATIONS
    )


def is_never_routed(path: str) -> bool:
    """Metrics, internal routes and dot segments never reach a service from the public side.

    `path` is the percent-decoded path, so `%2e%2e` and `internal%2F` are caught too.
    """
    padded = f"{path}/"
    return path == "/metrics" or "/internal/" in padded or "/../" in padded or "/./" in padded


def route_for(method: str, path: str) -> Route | None:
    """The service that owns `path`, or None when it is not an API path."""
    _, _, rest = path.partition("/")
    prefix, _, tail = rest.partition("/")
    service = PREFIX_OWNERS.get(prefix, prefix)
    if prefix not in ROUTED_PREFIXES:
        return None
    if tail == "openapi.json" and service == prefix:
        return Route(
            service=service, public=method in ("GET", "HEAD"), ip_limited=False, api_document=True
        )
    normalised = path.rstrip("/") or "/"
    if _sso_navigation(method, normalised):
        return Route(
            service=service,
            public=True,
            ip_limited=True,
            cost=cost_of(method, path),
            navigation=True,
        )
    if method in ("GET", "HEAD") and normalised == SSO_PROVIDERS_PATH:
        return Route(service=service, public=True, ip_limited=False)
    public = (method, normalised) in PUBLIC_ROUTES
    return Route(
        service=service,
        public=public,
        ip_limited=public and normalised in IP_LIMITED_ROUTES,
        cost=cost_of(method, normalised),
    )
