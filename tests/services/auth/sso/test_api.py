"""Signing in through identity providers, end to end: a browser (httpx with a cookie jar) goes
from kibitz's gateway to the real OpenID Connect provider and back."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

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
