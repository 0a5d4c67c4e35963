"""Signing in through identity providers, end to end: a browser (httpx with a cookie jar) goes
from kibitz's gateway to the real OpenID Connect provider and back."""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.services.auth.sso.conftest import CORP_PROVIDER, SignIn, SsoWorld, sign_in


def _error_of(signed: SignIn) -> str | None:
    location = urlsplit(signed.location)
    if location.path != "/login":
        return None
    return parse_qs(location.query).get("error", [None])[0]


async def _tokens_from_cookie(world: SsoWorld, browser: httpx.AsyncClient) -> dict[str, object]:
    """What the web app does on landing: refresh with the cookie the callback set."""
    answer = await browser.post(
        f"{world.gateway}/auth/refresh", json={}, headers={"x-kibitz-client": "web"}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def _me(world: SsoWorld, access_token: str) -> dict[str, object]:
    answer = await world.stack.http.get(
        f"{world.gateway}/auth/me", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_signing_up_through_a_deployment_provider_makes_a_tenant_and_signs_in(
    world: SsoWorld,
) -> None:
    person = world.person()
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email, redirect="/chat/abc")
    assert signed.callback.status_code == 302, signed.callback.text
    assert signed.location == "/chat/abc"
    assert "kibitz_refresh" in signed.callback.cookies
    tokens = await _tokens_from_cookie(world, signed.browser)
    me = await _me(world, str(tokens["access_token"]))
    assert me["email"] == person.email
    assert me["role"] == "owner"
    assert me["has_password"] is False
    assert [(i["provider_id"], i["email"]) for i in me["identities"]] == [  # type: ignore[union-attr]
        (CORP_PROVIDER, person.email)
    ]


async def test_a_known_verified_email_is_linked_to_the_existing_account(world: SsoWorld) -> None:
    person = world.person()
    account = await world.stack.register(person.email)
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert signed.location == "/dashboard"
    tokens = await _tokens_from_cookie(world, signed.browser)
    me = await _me(world, str(tokens["access_token"]))
    assert me["id"] == account.user["id"]
    assert me["has_password"] is True
    assert [i["provider_name"] for i in me["identities"]] == ["Corp ID"]  # type: ignore[union-attr]
    # The second time the link itself is found: the same account again.
    again = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    tokens = await _tokens_from_cookie(world, again.browser)
    assert (await _me(world, str(tokens["access_token"])))["id"] == account.user["id"]


async def test_an_unverified_email_is_refused_and_never_linked(world: SsoWorld) -> None:
    person = world.person(verified=False)
    account = await world.stack.register(person.email)
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert _error_of(signed) == "sso_unverified_email"
    assert "kibitz_refresh" not in signed.callback.cookies
    me = await _me(world, account.access_token)
    assert me["identities"] == []


async def test_an_unverified_email_cannot_sign_up_either(world: SsoWorld) -> None:
    person = world.person(verified=False)
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert _error_of(signed) == "sso_unverified_email"
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login", json={"email": person.email, "password": "whatever-123"}
    )
    assert login.status_code == 401


async def test_a_replayed_callback_is_refused(world: SsoWorld) -> None:
    person = world.person()
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    assert signed.location == "/dashboard"
    # The attacker has the whole callback URL and the browser's sign-in cookie.
    sealed = signed.callback.request.headers["cookie"]
    async with httpx.AsyncClient(trust_env=False) as attacker:
        replay = await attacker.get(signed.callback_url, headers={"cookie": sealed})
    assert replay.status_code == 302
    assert replay.headers["location"] == "/login?error=sso_expired"
    assert "kibitz_refresh" not in replay.cookies


async def test_a_callback_in_another_browser_is_refused(world: SsoWorld) -> None:
    """Login CSRF: a victim's browser lands on the attacker's callback URL without the cookie."""
    person = world.person()
    browser = httpx.AsyncClient(timeout=30, trust_env=False)
    start = await browser.get(
        f"{world.gateway}/auth/sso/{CORP_PROVIDER}/start",
        params={"login_hint": person.email},
        headers={"accept": "text/html"},
    )
    url = start.headers["location"]
    while not url.startswith(world.gateway):
        step = await browser.get(url)
        url = urljoin(url, step.headers["location"])
    async with httpx.AsyncClient(trust_env=False) as victim:
        answer = await victim.get(url, headers={"accept": "text/html"})
    assert answer.headers["location"] == "/login?error=sso_expired"
    # A forged cookie is no better than none.
    async with httpx.AsyncClient(trust_env=False) as victim:
        answer = await victim.get(url, headers={"cookie": "kibitz_sso=gAAAAABforged"})
    assert answer.headers["location"] == "/login?error=sso_expired"
    await browser.aclose()


async def test_a_state_that_does_not_match_the_cookie_is_refused(world: SsoWorld) -> None:
    person = world.person()
    signed_url = await _callback_url_of_a_sign_in(world, person.email)
    browser, url = signed_url
    tampered = url.replace("state=", "state=x")
    answer = await browser.get(tampered)
    assert answer.headers["location"] == "/login?error=sso_expired"
    await browser.aclose()


async def _callback_url_of_a_sign_in(
    world: SsoWorld, email: str, provider_id: str = CORP_PROVIDER
) -> tuple[httpx.AsyncClient, str]:
    browser = httpx.AsyncClient(timeout=30, trust_env=False)
    start = await browser.get(
        f"{world.gateway}/auth/sso/{provider_id}/start", params={"login_hint": email}
    )
    url = start.headers["location"]
    while not url.startswith(world.gateway):
        step = await browser.get(url)
        url = urljoin(url, step.headers["location"])
    return browser, url


@pytest.mark.parametrize(
    "redirect",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
async def test_open_redirects_are_refused_at_the_start(world: SsoWorld, redirect: str) -> None:
    answer = await world.stack.http.get(
        f"{world.gateway}/auth/sso/{CORP_PROVIDER}/start", params={"redirect": redirect}
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("invalid-redirect")
    assert "location" not in answer.headers


async def test_the_provider_saying_no_ends_on_the_login_page(world: SsoWorld) -> None:
    person = world.person()
    browser, url = await _callback_url_of_a_sign_in(world, person.email)
    query = parse_qs(urlsplit(url).query)
    denied = (
        f"{world.gateway}/auth/sso/{CORP_PROVIDER}/callback?"
        f"error=access_denied&state={query['state'][0]}"
    )
    answer = await browser.get(denied)
    assert answer.headers["location"] == "/login?error=sso_cancelled"
    await browser.aclose()


async def test_an_unknown_provider_ends_on_the_login_page(world: SsoWorld) -> None:
    for provider_id in ("nope", "0193a4f2-6c1e-7b3a-9d41-2f0e8c7a5b10"):
        answer = await world.stack.http.get(
            f"{world.gateway}/auth/sso/{provider_id}/start", headers={"accept": "text/html"}
        )
        assert answer.status_code == 302
        assert answer.headers["location"] == "/login?error=sso_unknown_provider"


async def test_the_providers_list_offers_the_deployment_providers(world: SsoWorld) -> None:
    answer = await world.stack.http.get(f"{world.gateway}/auth/sso/providers")
    assert answer.status_code == 200
    assert answer.json()["items"] == [
        {"id": "corp", "name": "Corp ID", "kind": "oidc"},
        {"id": "github", "name": "GitHub", "kind": "github"},
    ]
