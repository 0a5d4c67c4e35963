"""The ID token is believed only when the issuer's key signed it for this client and this
sign-in, and it is fresh: an attacker on the wire (or a provider's bug) changes it in the token
endpoint's answer, and kibitz refuses."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from tests.fixtures.github import GithubUser
from tests.services.auth.sso.conftest import CORP_PROVIDER, GITHUB_PROVIDER, SsoWorld, sign_in

Claims = dict[str, Any]


@pytest.fixture
def tamper(world: SsoWorld) -> Iterator[Callable[[Callable[[Claims], str]], None]]:
    """Install a rewrite of the next ID tokens; removed after the test."""

    def install(rewrite: Callable[[Claims], str]) -> None:
        world.idp.tamper = lambda _header, claims: rewrite(claims)

    yield install
    world.idp.tamper = None


async def _refused(world: SsoWorld) -> None:
    person = world.person()
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert signed.callback.status_code == 302
    assert signed.location == "/login?error=sso_failed"
    assert "kibitz_refresh" not in signed.callback.cookies
    # Nothing was made for the person.
    login = await world.stack.http.get(
        f"{world.gateway}/auth/sso/providers", params={"email": person.email}
    )
    assert login.status_code == 200


async def test_an_untouched_id_token_passes_through_the_tamper_hook(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    """The control: re-signing the same claims with the issuer's key is accepted, so each
    refusal below is about the one thing it changes."""
    tamper(lambda claims: world.idp.sign(claims))
    person = world.person()
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert signed.location == "/dashboard"


async def test_an_id_token_signed_by_another_key_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"})
    tamper(lambda claims: world.idp.sign(claims, key=forger))
    await _refused(world)


async def test_an_id_token_with_a_changed_payload_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    def swap_payload(claims: Claims) -> str:
        genuine = world.idp.sign(claims)
        other = world.idp.sign({**claims, "email": "ceo@example.org"})
        header, _, signature = genuine.split(".")
        return ".".join([header, other.split(".")[1], signature])

    tamper(swap_payload)
    await _refused(world)


async def test_an_expired_id_token_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    now = int(time.time())
    tamper(lambda claims: world.idp.sign({**claims, "iat": now - 3600, "exp": now - 600}))
    await _refused(world)


async def test_an_id_token_for_another_audience_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    tamper(lambda claims: world.idp.sign({**claims, "aud": "some-other-app"}))
    await _refused(world)


async def test_an_id_token_from_another_issuer_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    tamper(lambda claims: world.idp.sign({**claims, "iss": "https://evil.example"}))
    await _refused(world)


async def test_an_id_token_with_another_sign_ins_nonce_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    tamper(lambda claims: world.idp.sign({**claims, "nonce": "nonce-of-another-sign-in"}))
    await _refused(world)


async def test_an_id_token_without_a_nonce_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    tamper(lambda claims: world.idp.sign({k: v for k, v in claims.items() if k != "nonce"}))
    await _refused(world)


async def test_an_unsigned_id_token_is_refused(
    world: SsoWorld, tamper: Callable[[Callable[[Claims], str]], None]
) -> None:
    def unsigned(claims: Claims) -> str:
        def part(value: Claims) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."

    tamper(unsigned)
    await _refused(world)


# --- GitHub ---------------------------------------------------------------------------------


def _github_user(world: SsoWorld, *, verified: bool, email: str | None = None) -> GithubUser:
    user_id = len(world.github.users) + 1000
    user = GithubUser(
        id=user_id,
        login=f"octo{user_id}",
        name="Mona Octocat",
        emails=[
            {
                "email": email or f"mona{user_id}@example.net",
                "primary": True,
                "verified": verified,
                "visibility": "private",
            },
            {
                "email": f"other{user_id}@example.net",
                "primary": False,
                "verified": True,
                "visibility": None,
            },
        ],
    )
    world.github.add_user(user)
    world.github.signed_in = user.login
    return user


async def test_github_signs_up_with_the_verified_primary_email(world: SsoWorld) -> None:
    user = _github_user(world, verified=True)
    signed = await sign_in(world, GITHUB_PROVIDER)
    assert signed.location == "/dashboard"
    refreshed = await signed.browser.post(
        f"{world.gateway}/auth/refresh", json={}, headers={"x-kibitz-client": "web"}
    )
    assert refreshed.status_code == 200
    me = await world.stack.http.get(
        f"{world.gateway}/auth/me",
        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
    )
    assert me.json()["email"] == user.emails[0]["email"]
    assert me.json()["identities"][0]["provider_id"] == GITHUB_PROVIDER


async def test_github_with_an_unverified_primary_email_is_refused(world: SsoWorld) -> None:
    user = _github_user(world, verified=False)
    account = await world.stack.register(user.emails[0]["email"])
    signed = await sign_in(world, GITHUB_PROVIDER)
    assert signed.location == "/login?error=sso_unverified_email"
    me = await world.stack.http.get(f"{world.gateway}/auth/me", headers=account.headers)
    assert me.json()["identities"] == []


async def test_a_code_injected_into_another_sign_in_is_refused(world: SsoWorld) -> None:
    """PKCE: a code stolen from one sign-in is useless in another (its verifier does not match
    the code's challenge; the fake checks it as GitHub does)."""
    _github_user(world, verified=True)
    stolen_browser, stolen_callback = await _until_callback(world)
    browser, callback = await _until_callback(world)
    stolen_code = parse_qs(urlsplit(stolen_callback).query)["code"][0]
    own_code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = await browser.get(callback.replace(own_code, stolen_code))
    assert answer.headers["location"] == "/login?error=sso_failed"
    await browser.aclose()
    await stolen_browser.aclose()


async def _until_callback(world: SsoWorld) -> tuple[httpx.AsyncClient, str]:
    """A GitHub sign-in stopped just before kibitz's callback."""
    browser = httpx.AsyncClient(timeout=30, trust_env=False)
    start = await browser.get(f"{world.gateway}/auth/sso/{GITHUB_PROVIDER}/start")
    authorize = await browser.get(start.headers["location"])
    return browser, authorize.headers["location"]
