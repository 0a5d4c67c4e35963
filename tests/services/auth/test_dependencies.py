"""Which client address and scheme the auth service believes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from kibitz.services.auth.config import AuthSettings
from kibitz.services.auth.dependencies import client_ip, request_is_https


def request_from(peer: str, headers: dict[str, str], *, scheme: str = "http") -> Request:
    app = SimpleNamespace(state=SimpleNamespace(auth_settings=AuthSettings()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/auth/login",
        "scheme": scheme,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
        "server": ("127.0.0.1", 8000),
        "app": app,
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("127.0.0.1", "203.0.113.5", "203.0.113.5"),
        ("::1", "203.0.113.5", "203.0.113.5"),
        # The last hop is the one the trusted proxy appended; earlier ones are the client's.
        ("127.0.0.1", "1.2.3.4, 203.0.113.5", "203.0.113.5"),
        ("127.0.0.1", "not an address", "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        # Anyone else cannot choose their address.
        ("198.51.100.7", "203.0.113.5", "198.51.100.7"),
    ],
)
async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    peer: str, forwarded_for: str, expected: str
) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    assert await client_ip(request_from(peer, headers)) == expected


def test_https_is_believed_from_the_scheme_or_a_trusted_proxy() -> None:
    assert request_is_https(request_from("198.51.100.7", {}, scheme="https"))
    assert request_is_https(request_from("127.0.0.1", {"X-Forwarded-Proto": "https"}))
    assert not request_is_https(request_from("198.51.100.7", {"X-Forwarded-Proto": "https"}))
    assert not request_is_https(request_from("127.0.0.1", {}))
