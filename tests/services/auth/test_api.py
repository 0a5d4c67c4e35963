"""The auth contract route by route, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from kibitz.kit.http import FORWARDED_BY_HEADER, INTERNAL_TOKEN_HEADER, forwarding_credential
from kibitz.kit.jwt import ALGORITHM, AUDIENCE, ISSUER, SigningKey
from tests.fixtures.stack import DEFAULT_PASSWORD, Stack

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """The answer is a 4xx problem+json document (of `status` when given)."""
    assert 400 <= response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    return body


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


# --- register ---------------------------------------------------------------------------------


async def test_register_answers_the_user_and_a_token_pair(auth: Stack, auth_url: str) -> None:
    email = new_email()
    response = await auth.http.post(
        f"{auth_url}/auth/register",
        json={
            "email": f"  {email.upper()} ",
            "password": "a perfectly fine passphrase",
            "full_name": "Ada Lovelace",
            "tenant_name": "Engines",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["access_token"].count(".") == 2
    assert len(body["refresh_token"]) >= 43
    user = body["user"]
    assert set(user) == {"id", "email", "tenant_id", "role", "full_name", "created_at"}
    assert user["email"] == email
    assert user["role"] == "owner"
    assert user["full_name"] == "Ada Lovelace"
    assert user["created_at"].endswith("Z") or user["created_at"].endswith("+00:00")
    uuid.UUID(user["id"])
    uuid.UUID(user["tenant_id"])
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"


async def test_register_treats_blank_names_as_absent(auth: Stack, auth_url: str) -> None:
    response = await auth.http.post(
        f"{auth_url}/auth/register",
        json={
            "email": new_email(),
            "password": DEFAULT_PASSWORD,
            "full_name": "   ",
            "tenant_name": " ",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["user"]["full_name"] is None


async def test_register_refuses_an_email_taken_in_any_case(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    response = await auth.http.post(
        f"{auth_url}/auth/register",
        json={"email": account.email.upper(), "password": "another fine passphrase"},
    )
    body = assert_problem(response, 409)
    assert "password" not in json.dumps(body).lower()


@pytest.mark.parametrize(
    "password",
    ["password1", "Password123", "iloveyou1", "QWERTYUIOP"],
    ids=["password1", "Password123", "iloveyou1", "qwertyuiop-upper"],
)
async def test_register_refuses_common_passwords(auth: Stack, auth_url: str, password: str) -> None:
    response = await auth.http.post(
        f"{auth_url}/auth/register", json={"email": new_email(), "password": password}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "password"


async def test_register_accepts_any_unicode_password_of_8_to_128_characters(
    auth: Stack, auth_url: str
) -> None:
    for password in ["пароль-😀-密码", "é" * 8, "x" * 128]:
        account = await auth.register(password=password)
        login = await auth.http.post(
            f"{auth_url}/auth/login", json={"email": account.email, "password": password}
        )
        assert login.status_code == 200, login.text


async def test_register_with_an_invite_needs_the_tenants_service(
    auth: Stack, auth_url: str
) -> None:
    response = await auth.http.post(
        f"{auth_url}/auth/register",
        json={"email": new_email(), "password": DEFAULT_PASSWORD, "invite_code": "abc"},
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "Retry-After" in response.headers
    assert "tenants" in response.json()["detail"]


async def test_register_publishes_user_registered(auth: Stack) -> None:
    import asyncio

    received: asyncio.Queue[Any] = asyncio.Queue()

    async def handler(envelope: Any) -> None:
        await received.put(envelope)

    await auth.running.platform.bus.subscribe(
        ["auth.user_registered"], group=f"test-{uuid.uuid4().hex}", handler=handler
    )
    account = await auth.register(full_name="Grace Hopper", tenant_name="Navy")
    while True:
        envelope = await asyncio.wait_for(received.get(), timeout=10)
        if envelope.payload["user_id"] == account.user["id"]:
            break
    assert envelope.name == "auth.user_registered"
    assert envelope.payload == {
        "user_id": account.user["id"],
        "tenant_id": account.user["tenant_id"],
        "email": account.email,
        "full_name": "Grace Hopper",
        "role": "owner",
        "tenant_name": "Navy",
    }


# --- bad input --------------------------------------------------------------------------------

LONG = "x" * 1000
REGISTER_BAD = {
    "missing email": {"password": DEFAULT_PASSWORD},
    "missing password": {"email": "a@example.com"},
    "email wrong type": {"email": 123, "password": DEFAULT_PASSWORD},
    "email null": {"email": None, "password": DEFAULT_PASSWORD},
    "email list": {"email": ["a@example.com"], "password": DEFAULT_PASSWORD},
    "email too long": {"email": "a" * 250 + "@example.com", "password": DEFAULT_PASSWORD},
    "email malformed": {"email": "not-an-email", "password": DEFAULT_PASSWORD},
    "email without domain": {"email": "ada@", "password": DEFAULT_PASSWORD},
    "email without local part": {"email": "@example.com", "password": DEFAULT_PASSWORD},
    "email with spaces": {"email": "a da@example.com", "password": DEFAULT_PASSWORD},
    "email empty": {"email": "", "password": DEFAULT_PASSWORD},
    "password wrong type": {"email": "a@example.com", "password": 12345678},
    "password null": {"email": "a@example.com", "password": None},
    "password too short": {"email": "a@example.com", "password": "short7!"},
    "password too long": {"email": "a@example.com", "password": "p" * 129},
    "full_name wrong type": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "full_name": 5,
    },
    "full_name too long": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "full_name": "n" * 201,
    },
    "tenant_name wrong type": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "tenant_name": ["x"],
    },
    "tenant_name too long": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "tenant_name": "t" * 101,
    },
    "invite_code wrong type": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "invite_code": {"code": 1},
    },
    "invite_code too long": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "invite_code": LONG,
    },
    "email with a NUL": {"email": "a\x00b@example.com", "password": DEFAULT_PASSWORD},
    "full_name with a NUL": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "full_name": "Ada\x00",
    },
    "tenant_name with a NUL": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "tenant_name": "Acme\x00Corp",
    },
    "invite_code with a newline": {
        "email": "a@example.com",
        "password": DEFAULT_PASSWORD,
        "invite_code": "abc\ndef",
    },
    "empty object": {},
    "array": [],
    "null": None,
    "string": "hello",
}
LOGIN_BAD = {
    "missing email": {"password": DEFAULT_PASSWORD},
    "missing password": {"email": "a@example.com"},
    "email wrong type": {"email": 1, "password": DEFAULT_PASSWORD},
    "email too long": {"email": "a" * 250 + "@example.com", "password": DEFAULT_PASSWORD},
    "email malformed": {"email": "nope", "password": DEFAULT_PASSWORD},
    "password wrong type": {"email": "a@example.com", "password": True},
    "password empty": {"email": "a@example.com", "password": ""},
    "password too long": {"email": "a@example.com", "password": "p" * 129},
    "empty object": {},
    "array": [1, 2],
    "null": None,
}
TOKEN_BAD = {
    "refresh_token wrong type": {"refresh_token": 42},
    "refresh_token list": {"refresh_token": ["a"]},
    "refresh_token empty": {"refresh_token": ""},
    "refresh_token too long": {"refresh_token": LONG},
    "missing refresh_token": {},
    "array": [],
    "string": "token",
}


@pytest.mark.parametrize("body", REGISTER_BAD.values(), ids=REGISTER_BAD.keys())
async def test_register_answers_a_problem_for_bad_input(
    auth: Stack, auth_url: str, body: Any
) -> None:
    response = await auth.http.post(f"{auth_url}/auth/register", json=body)
    problem = assert_problem(response)
    assert response.status_code in (400, 422)
    assert problem["errors"]


@pytest.mark.parametrize("body", LOGIN_BAD.values(), ids=LOGIN_BAD.keys())
async def test_login_answers_a_problem_for_bad_input(auth: Stack, auth_url: str, body: Any) -> None:
    response = await auth.http.post(f"{auth_url}/auth/login", json=body)
    assert_problem(response, 422)


@pytest.mark.parametrize("route", ["refresh", "logout"])
@pytest.mark.parametrize("body", TOKEN_BAD.values(), ids=TOKEN_BAD.keys())
async def test_token_routes_answer_a_problem_for_bad_input(
    auth: Stack, auth_url: str, route: str, body: Any
) -> None:
    response = await auth.http.post(f"{auth_url}/auth/{route}", json=body)
    assert_problem(response, 422)


@pytest.mark.parametrize("route", ["register", "login", "refresh", "logout"])
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", None),
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b'{"email": "a@example.com",', "application/json"),
        (b"email=a@example.com&password=x", "application/x-www-form-urlencoded"),
        (b"plain words", "text/plain"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
    ids=["no body", "empty json", "not json", "truncated json", "form", "text", "binary"],
)
async def test_post_routes_answer_a_problem_for_empty_or_non_json_bodies(
    auth: Stack, auth_url: str, route: str, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await auth.http.post(f"{auth_url}/auth/{route}", content=content, headers=headers)
    assert_problem(response)


# --- login ------------------------------------------------------------------------------------


async def test_login_answers_a_token_pair_for_any_email_case(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    response = await auth.http.post(
        f"{auth_url}/auth/login",
        json={"email": f" {account.email.upper()}", "password": account.password},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == account.user["id"]
    assert body["token_type"] == "bearer"
    me = await auth.http.get(
        f"{auth_url}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["id"] == account.user["id"]


async def test_login_answers_the_same_401_for_unknown_email_and_wrong_password(
    auth: Stack, auth_url: str
) -> None:
    account = await auth.register()
    wrong = await auth.http.post(
        f"{auth_url}/auth/login", json={"email": account.email, "password": "not the password"}
    )
    unknown = await auth.http.post(
        f"{auth_url}/auth/login", json={"email": new_email(), "password": "not the password"}
    )
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert wrong.json() == unknown.json()
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


# --- me and jwks ------------------------------------------------------------------------------


async def test_me_answers_the_callers_account(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    response = await auth.http.get(f"{auth_url}/auth/me", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "tenant_id",
        "role",
        "created_at",
        "has_password",
        "identities",
    }
    assert body["has_password"] is True
    assert body["identities"] == []
    assert body["id"] == account.user["id"]
    assert body["email"] == account.email
    assert body["tenant_id"] == account.tenant_id
    assert body["role"] == "owner"


async def test_jwks_publishes_the_key_access_tokens_are_signed_with(
    auth: Stack, auth_url: str
) -> None:
    account = await auth.register()
    response = await auth.http.get(f"{auth_url}/auth/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    published = {key["kid"]: key for key in keys}
    assert kid in published
    key = published[kid]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key
    claims = jwt.decode(
        account.access_token,
        jwt.PyJWK(key, algorithm="EdDSA"),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
    )
    assert claims["sub"] == account.user["id"]
    assert claims["tid"] == account.tenant_id
    assert claims["role"] == "owner"
    assert claims["exp"] - claims["iat"] == 900
    assert {"jti", "iat", "exp", "iss", "aud"} <= claims.keys()


# --- JWT attacks at the service ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(account_user: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": account_user["id"],
        "tid": account_user["tenant_id"],
        "role": "owner",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _service_key(auth: Stack) -> SigningKey:
    key: SigningKey = auth.running.apps["auth"].state.auth_service.keys.signing_key
    return key


def _forge(auth: Stack, user: dict[str, Any], attack: str) -> str:
    key = _service_key(auth)
    now = int(time.time())
    if attack == "alg none":
        header = {"alg": "none", "typ": "JWT", "kid": key.kid}
        payload = _claims(user)
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."
    if attack == "HS256 with the public key":
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = (
            f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(user)).encode())}"
        )
        public = json.dumps(key.public_jwk()).encode()
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"
    if attack == "HS256 with the public key bytes":
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = (
            f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims(user)).encode())}"
        )
        raw = base64.urlsafe_b64decode(key.public_jwk()["x"] + "==")
        signature = hmac.new(raw, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"
    if attack == "expired":
        return key.issue_access_token(
            user_id=uuid.UUID(user["id"]),
            tenant_id=uuid.UUID(user["tenant_id"]),
            role="owner",
            now=now - 3600,
        )
    if attack == "not yet valid":
        return key.issue_access_token(
            user_id=uuid.UUID(user["id"]),
            tenant_id=uuid.UUID(user["tenant_id"]),
            role="owner",
            now=now + 3600,
        )
    if attack == "wrong iss":
        claims = _claims(user, iss="someone-else")
    elif attack == "wrong aud":
        claims = _claims(user, aud="another-app")
    elif attack == "missing exp":
        claims = _claims(user)
        del claims["exp"]
    elif attack == "unknown kid":
        return jwt.encode(
            _claims(user), key.private_key, algorithm=ALGORITHM, headers={"kid": "not-a-kid"}
        )
    elif attack == "another key":
        other = SigningKey.generate()
        return jwt.encode(
            _claims(user), other.private_key, algorithm=ALGORITHM, headers={"kid": other.kid}
        )
    elif attack == "another key with our kid":
        other = SigningKey.generate()
        return jwt.encode(
            _claims(user), other.private_key, algorithm=ALGORITHM, headers={"kid": key.kid}
        )
    elif attack == "tampered payload":
        token = key.issue_access_token(
            user_id=uuid.UUID(user["id"]), tenant_id=uuid.UUID(user["tenant_id"]), role="member"
        )
        head, _, signature = token.split(".")
        payload = _b64(json.dumps(_claims(user, role="owner")).encode())
        return f"{head}.{payload}.{signature}"
    elif attack == "tampered signature":
        token = key.issue_access_token(
            user_id=uuid.UUID(user["id"]), tenant_id=uuid.UUID(user["tenant_id"]), role="owner"
        )
        head, payload, signature = token.split(".")
        flipped = "A" if signature[0] != "A" else "B"
        return f"{head}.{payload}.{flipped}{signature[1:]}"
    elif attack == "garbage":
        return "not.a.token"
    else:  # pragma: no cover
        raise AssertionError(attack)
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


JWT_ATTACKS = [
    "alg none",
    "HS256 with the public key",
    "HS256 with the public key bytes",
    "expired",
    "not yet valid",
    "wrong iss",
    "wrong aud",
    "missing exp",
    "tampered payload",
    "tampered signature",
    "unknown kid",
    "another key",
    "another key with our kid",
    "garbage",
]


@pytest.mark.parametrize("attack", JWT_ATTACKS)
async def test_me_rejects_forged_access_tokens(auth: Stack, auth_url: str, attack: str) -> None:
    account = await auth.register()
    token = _forge(auth, account.user, attack)
    response = await auth.http.get(
        f"{auth_url}/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer  x y", "Basic dXNlcjpwYXNz", "Token abc"]
)
async def test_me_answers_401_without_a_bearer_token(
    auth: Stack, auth_url: str, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await auth.http.get(f"{auth_url}/auth/me", headers=headers)
    assert_problem(response, 401)


async def test_me_accepts_a_token_the_service_key_signs_now(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    key = _service_key(auth)
    token = jwt.encode(
        _claims(account.user), key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid}
    )
    response = await auth.http.get(
        f"{auth_url}/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


# --- refresh and logout -----------------------------------------------------------------------


async def _refresh(auth: Stack, auth_url: str, token: str) -> httpx.Response:
    return await auth.http.post(f"{auth_url}/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_token_pair(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    response = await _refresh(auth, auth_url, account.refresh_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] != account.refresh_token
    assert body["access_token"] != account.access_token
    assert body["user"]["id"] == account.user["id"]
    me = await auth.http.get(
        f"{auth_url}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    again = await _refresh(auth, auth_url, body["refresh_token"])
    assert again.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_family(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    first = (await _refresh(auth, auth_url, account.refresh_token)).json()["refresh_token"]
    newest = (await _refresh(auth, auth_url, first)).json()["refresh_token"]
    reuse = await _refresh(auth, auth_url, account.refresh_token)
    assert_problem(reuse, 401)
    # The newest token of the family stops working too.
    assert_problem(await _refresh(auth, auth_url, newest), 401)
    assert_problem(await _refresh(auth, auth_url, first), 401)
    # Other sessions of the same user are untouched.
    login = await auth.http.post(
        f"{auth_url}/auth/login", json={"email": account.email, "password": account.password}
    )
    assert (await _refresh(auth, auth_url, login.json()["refresh_token"])).status_code == 200


async def test_refresh_rejects_an_unknown_token(auth: Stack, auth_url: str) -> None:
    assert_problem(await _refresh(auth, auth_url, "x" * 43), 401)


async def test_logout_revokes_the_family(auth: Stack, auth_url: str) -> None:
    account = await auth.register()
    rotated = (await _refresh(auth, auth_url, account.refresh_token)).json()["refresh_token"]
    response = await auth.http.post(
        f"{auth_url}/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await _refresh(auth, auth_url, rotated), 401)


async def test_logout_of_an_unknown_token_is_quietly_accepted(auth: Stack, auth_url: str) -> None:
    response = await auth.http.post(f"{auth_url}/auth/logout", json={"refresh_token": "y" * 43})
    assert response.status_code == 204


# --- browser clients: the refresh cookie ------------------------------------------------------


def _cookie_attributes(response: httpx.Response) -> dict[str, str]:
    header = response.headers["set-cookie"]
    parts = [part.strip() for part in header.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == "kibitz_refresh"
    attributes = {"value": value.strip('"')}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        attributes[key.lower()] = val
    return attributes


async def test_web_clients_get_the_refresh_token_as_a_strict_http_only_cookie(
    auth_url: str,
) -> None:
    web = {"X-Kibitz-Client": "web"}
    async with httpx.AsyncClient(base_url=auth_url, trust_env=False) as browser:
        email = new_email()
        registered = await browser.post(
            "/auth/register", json={"email": email, "password": DEFAULT_PASSWORD}, headers=web
        )
        assert registered.status_code == 201
        cookie = _cookie_attributes(registered)
        assert cookie["value"] == registered.json()["refresh_token"]
        assert cookie["path"] == "/auth"
        assert "httponly" in cookie
        assert cookie["samesite"].lower() == "strict"
        assert cookie["max-age"] == str(30 * 24 * 3600)
        assert "secure" not in cookie

        # The browser sends {} and the cookie; the answer rotates both.
        refreshed = await browser.post(
            "/auth/refresh", json={}, headers={**web, "Cookie": f"kibitz_refresh={cookie['value']}"}
        )
        assert refreshed.status_code == 200, refreshed.text
        rotated = _cookie_attributes(refreshed)
        assert rotated["value"] == refreshed.json()["refresh_token"] != cookie["value"]

        logout = await browser.post(
            "/auth/logout", json={}, headers={**web, "Cookie": f"kibitz_refresh={rotated['value']}"}
        )
        assert logout.status_code == 204
        cleared = _cookie_attributes(logout)
        assert cleared["value"] == ""
        assert cleared["max-age"] == "0"
        after = await browser.post(
            "/auth/refresh", json={}, headers={"Cookie": f"kibitz_refresh={rotated['value']}"}
        )
        assert_problem(after, 401)

        login = await browser.post(
            "/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}, headers=web
        )
        assert _cookie_attributes(login)["value"] == login.json()["refresh_token"]


async def test_the_refresh_cookie_is_secure_behind_https(auth: Stack, auth_url: str) -> None:
    # The gateway's word on the scheme (its forwarding credential; see test_dependencies).
    gateway = {FORWARDED_BY_HEADER: forwarding_credential(auth.running.platform.internal_token)}
    async with httpx.AsyncClient(base_url=auth_url, trust_env=False) as browser:
        response = await browser.post(
            "/auth/register",
            json={"email": new_email(), "password": DEFAULT_PASSWORD},
            headers={"X-Kibitz-Client": "web", "X-Forwarded-Proto": "https", **gateway},
        )
        assert "secure" in _cookie_attributes(response)


async def test_api_clients_get_no_cookie_and_a_body_token_wins_over_the_cookie(
    auth: Stack, auth_url: str
) -> None:
    first = await auth.register()
    second = await auth.register()
    async with httpx.AsyncClient(base_url=auth_url, trust_env=False) as client:
        response = await client.post(
            "/auth/refresh",
            json={"refresh_token": first.refresh_token},
            headers={"Cookie": f"kibitz_refresh={second.refresh_token}"},
        )
        assert response.status_code == 200
        assert response.json()["user"]["id"] == first.user["id"]
        assert "set-cookie" not in response.headers


# --- internal route ---------------------------------------------------------------------------


async def test_internal_user_lookup_needs_the_service_credential(
    auth: Stack, auth_url: str
) -> None:
    account = await auth.register(full_name="Katherine Johnson")
    url = f"{auth_url}/auth/internal/users/{account.user['id']}"
    assert_problem(await auth.http.get(url), 403)
    assert_problem(await auth.http.get(url, headers={INTERNAL_TOKEN_HEADER: "guess"}), 403)
    assert_problem(await auth.http.get(url, headers=account.headers), 403)
    credential = {INTERNAL_TOKEN_HEADER: auth.running.platform.internal_token}
    response = await auth.http.get(url, headers=credential)
    assert response.status_code == 200
    assert response.json() == {
        "id": account.user["id"],
        "email": account.email,
        "full_name": "Katherine Johnson",
        "tenant_id": account.tenant_id,
        "role": "owner",
        "created_at": account.user["created_at"],
    }
    missing = await auth.http.get(
        f"{auth_url}/auth/internal/users/{uuid.uuid4()}", headers=credential
    )
    assert_problem(missing, 404)
    malformed = await auth.http.get(f"{auth_url}/auth/internal/users/nope", headers=credential)
    assert_problem(malformed, 422)


# --- conventions ------------------------------------------------------------------------------


async def test_probes_metrics_and_request_ids(auth: Stack, auth_url: str) -> None:
    assert (await auth.http.get(f"{auth_url}/healthz")).json() == {"status": "ok"}
    ready = await auth.http.get(f"{auth_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    await auth.http.get(f"{auth_url}/auth/jwks")
    metrics = await auth.http.get(f"{auth_url}/metrics")
    assert metrics.status_code == 200
    assert 'kibitz_http_requests_total{method="GET",route="/auth/jwks",service="auth"' in (
        metrics.text
    )
    assert "kibitz_auth_logins_total" in metrics.text
    kept = await auth.http.get(f"{auth_url}/auth/jwks", headers={"X-Request-ID": "req-42"})
    assert kept.headers["x-request-id"] == "req-42"
    made = await auth.http.get(f"{auth_url}/auth/jwks")
    assert len(made.headers["x-request-id"]) == 32


async def test_unknown_routes_and_methods_answer_problems(auth: Stack, auth_url: str) -> None:
    assert_problem(await auth.http.get(f"{auth_url}/auth/nothing-here"), 404)
    assert_problem(await auth.http.get(f"{auth_url}/auth/login"), 405)
    assert_problem(await auth.http.delete(f"{auth_url}/auth/me"), 405)


async def test_openapi_documents_every_route_with_errors_and_examples(
    auth: Stack, auth_url: str
) -> None:
    document = (await auth.http.get(f"{auth_url}/auth/openapi.json")).json()
    schemas = document["components"]["schemas"]
    expected = {
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/me", "get"),
        ("/auth/jwks", "get"),
        ("/auth/internal/users/{user_id}", "get"),
        ("/auth/internal/session-revocations", "get"),
        ("/auth/api-keys", "post"),
        ("/auth/api-keys", "get"),
        ("/auth/api-keys/{key_id}", "delete"),
        ("/auth/internal/api-keys/exchange", "post"),
        ("/auth/me/password", "put"),
        ("/auth/me/password", "delete"),
        ("/auth/sso/providers", "get"),
        ("/auth/sso/tenant", "get"),
        ("/auth/sso/tenant", "put"),
        ("/auth/sso/tenant", "delete"),
        ("/auth/account", "delete"),
    }
    # Browser navigations answer redirects only: tests/services/auth/sso checks their documents.
    navigations = {"/auth/sso/{provider_id}/start", "/auth/sso/{provider_id}/callback"}
    found = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith("/auth/") and path not in navigations
    }
    assert expected == found
    for path, method in expected:
        operation = document["paths"][path][method]
        errors = {code: answer for code, answer in operation["responses"].items() if code >= "400"}
        assert errors, f"{method} {path} documents no error answer"
        for answer in errors.values():
            assert "application/problem+json" in answer["content"], (path, method)
        success = [code for code in operation["responses"] if code < "300"]
        assert success, (path, method)
        for code in success:
            content = operation["responses"][code].get("content", {})
            for media in content.values():
                ref = media["schema"].get("$ref", "")
                if ref:
                    assert schemas[ref.rsplit("/", 1)[-1]].get("examples"), (path, ref)
        body = operation.get("requestBody")
        if body:
            schema = body["content"]["application/json"]["schema"]
            refs = [schema.get("$ref")] + [item.get("$ref") for item in schema.get("anyOf", [])]
            for ref in filter(None, refs):
                assert schemas[ref.rsplit("/", 1)[-1]].get("examples"), (path, ref)
    assert "/metrics" not in document["paths"]
