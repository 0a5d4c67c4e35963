"""The public pipeline: routes, the token check and its attacks, services not deployed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kibitz.kit.jwt import ALGORITHM, AUDIENCE, ISSUER, SigningKey
from tests.gateway.conftest import Harness

PROBLEM = "application/problem+json"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "tid": str(uuid.uuid4()),
        "role": "owner",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(key: SigningKey, kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(
        _claims(**overrides), key.private_key, algorithm=ALGORITHM, headers={"kid": kid or key.kid}
    )


def _alg_none(key: SigningKey) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    return f"{header}.{_b64(json.dumps(_claims()).encode())}."


def _hs256_with_public_key(key: SigningKey) -> str:
    public = key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _tampered(key: SigningKey) -> str:
    header, _, signature = _signed(key).split(".")
    return f"{header}.{_b64(json.dumps(_claims(role='admin')).encode())}.{signature}"


def _from_another_key(key: SigningKey) -> str:
    impostor = SigningKey.generate()
    impostor.kid = key.kid
    return _signed(impostor)


ATTACKS: dict[str, Callable[[SigningKey], str]] = {
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_public_key,
    "expired": lambda key: _signed(key, exp=int(time.time()) - 10, iat=int(time.time()) - 1000),
    "not yet valid": lambda key: _signed(key, nbf=int(time.time()) + 600),
    "wrong iss": lambda key: _signed(key, iss="someone-else"),
    "wrong aud": lambda key: _signed(key, aud="another-app"),
    "tampered payload": _tampered,
    "unknown kid": lambda key: _signed(key, kid="no-such-key"),
    "another key": _from_another_key,
    "garbage": lambda key: "not.a.jwt",
}


async def test_a_valid_token_is_proxied(harness: Harness) -> None:
    response = await harness.http.get("/users/echo", headers=harness.auth())
    assert response.status_code == 200
    assert response.json()["path"] == "/users/echo"


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_forged_and_invalid_tokens_are_refused_with_401(
    harness: Harness, attack: str
) -> None:
    token = ATTACKS[attack](harness.key)
    harness.upstreams["users"].state.hits = 0
    response = await harness.http.get("/users/echo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, attack
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert harness.upstreams["users"].state.hits == 0


async def test_a_missing_token_is_refused_with_401(harness: Harness) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        response = await harness.http.get("/chat/echo", headers=headers)
        assert response.status_code == 401
        assert response.json()["status"] == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/echo/../login"),
        ("GET", "/auth/jwks"),
        ("GET", "/users/openapi.json"),
    ],
)
async def test_public_routes_pass_without_a_token(harness: Harness, method: str, path: str) -> None:
    response = await harness.http.request(method, path)
    assert response.status_code != 401


async def test_register_login_refresh_logout_pass_without_a_token(harness: Harness) -> None:
    for path in ("/auth/register", "/auth/login", "/auth/refresh", "/auth/logout"):
        response = await harness.http.post(path, json={})
        # The echo upstream has no such route: a 404 from it proves the gateway let it through.
        assert response.status_code == 404, path
        assert "www-authenticate" not in response.headers


async def test_a_service_not_in_the_deployment_answers_503_with_retry_after(
    harness: Harness,
) -> None:
    for path in ("/tenants/plan", "/agents/my"):
        response = await harness.http.get(path, headers=harness.auth())
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert int(response.headers["retry-after"]) > 0
        assert "not part of this deployment" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/users/internal/secret",
        "/users/internal/secret/",
        "/users/%69nternal/secret",
        "/users/echo/%2e%2e/internal/secret",
        "/users/echo/../internal/secret",
    ],
)
async def test_metrics_and_internal_routes_are_not_reachable(harness: Harness, path: str) -> None:
    response = await harness.http.get(path, headers=harness.auth())
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text and "upstream_metric" not in response.text


async def test_an_unknown_api_path_is_a_404_problem(harness: Harness) -> None:
    response = await harness.http.get("/nothing-here", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
