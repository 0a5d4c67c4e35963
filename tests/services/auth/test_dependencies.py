"""Which client address and scheme the auth service believes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from kibitz.kit.http import FORWARDED_BY_HEADER, forwarding_credential
from kibitz.services.auth.config import AuthSettings
from kibitz.services.auth.dependencies import client_ip, request_is_https

CREDENTIAL = forwarding_credential("the-internal-token")
GATEWAY = {FORWARDED_BY_HEADER: CREDENTIAL}


def request_from(
    peer: str, headers: dict[str, str], *, scheme: str = "http", trusted: str = ""
) -> Request:
    app = SimpleNamespace(
        state=SimpleNamespace(
            auth_settings=AuthSettings(trusted_proxies=trusted), forwarding_credential=CREDENTIAL
        )
    )
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
        ("10.1.2.3", "203.0.113.5", "203.0.113.5"),
        ("::1", "203.0.113.5", "203.0.113.5"),
        # The last hop is the one the gateway appended; earlier ones are the client's.
        ("10.1.2.3", "1.2.3.4, 203.0.113.5", "203.0.113.5"),
        ("10.1.2.3", "not an address", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
    ],
)
async def test_forwarded_for_counts_from_the_gateway(
    peer: str, forwarded_for: str, expected: str
) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    assert await client_ip(request_from(peer, {**headers, **GATEWAY})) == expected


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "198.51.100.7"])
@pytest.mark.parametrize("credential", ["", "wrong", forwarding_credential("another token")])
async def test_no_other_caller_chooses_its_address_not_even_a_local_one(
    peer: str, credential: str
) -> None:
    # Issue 15 finding 3: a local process on auth's port rotated X-Forwarded-For per guess.
    headers = {"X-Forwarded-For": "203.0.113.5", FORWARDED_BY_HEADER: credential}
    assert await client_ip(request_from(peer, headers)) == peer


@pytest.mark.parametrize(
    ("trusted", "peer", "believed"),
    [
        ("10.0.0.0/8", "10.9.8.7", True),
        ("10.0.0.0/8, fd00::/8", "fd00::1", True),
        ("192.0.2.10", "192.0.2.10", True),
        ("192.0.2.10", "192.0.2.11", False),
        ("", "127.0.0.1", False),
    ],
)
async def test_operators_name_further_proxies_by_address_or_network(
    trusted: str, peer: str, believed: bool
) -> None:
    request = request_from(peer, {"X-Forwarded-For": "203.0.113.5"}, trusted=trusted)
    assert (await client_ip(request) == "203.0.113.5") is believed


def test_a_bad_trusted_proxy_is_a_setting_error() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        AuthSettings(trusted_proxies="10.0.0.0/8, the gateway")


def test_https_is_believed_from_the_scheme_or_a_trusted_proxy() -> None:
    assert request_is_https(request_from("198.51.100.7", {}, scheme="https"))
    assert request_is_https(request_from("127.0.0.1", {"X-Forwarded-Proto": "https", **GATEWAY}))
    assert not request_is_https(request_from("127.0.0.1", {"X-Forwarded-Proto": "https"}))
    assert not request_is_https(request_from("198.51.100.7", {"X-Forwarded-Proto": "https"}))
    assert not request_is_https(request_from("127.0.0.1", GATEWAY))
