"""Fixtures of the single sign-on tests: a real OpenID Connect provider, a local GitHub, and
kibitz (gateway, auth, tenants) configured to sign people in through both."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.conftest import DATABASES
from tests.fixtures.github import FakeGithub, fake_github
from tests.fixtures.oidc_provider import OidcClient, OidcUser, RunningOidcProvider, oidc_provider
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack, start_stack

CORP_PROVIDER = "corp"
GITHUB_PROVIDER = "github"
CORP_CLIENT = OidcClient("kibitz-deployment", "deployment-secret-xyz", [])


@dataclass
class SsoWorld:
    """kibitz and the identity providers it trusts."""

    stack: Stack
    idp: RunningOidcProvider
    github: FakeGithub

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")

    def person(self, *, verified: bool = True, domain: str = "example.org") -> OidcUser:
        """A new person at the identity provider."""
        user = OidcUser(
            sub=uuid.uuid4().hex,
            email=f"p-{uuid.uuid4().hex[:10]}@{domain}",
            email_verified=verified,
            name="Grace Hopper",
        )
        self.idp.add_user(user)
        return user


@dataclass
class SignIn:
    """A browser's trip through a provider: the callback's answer and the browser itself."""

    callback: httpx.Response
    callback_url: str
    browser: httpx.AsyncClient

    @property
    def location(self) -> str:
        return self.callback.headers.get("location", "")


async def sign_in(
    world: SsoWorld,
    provider_id: str,
    *,
    login_hint: str | None = None,
    redirect: str = "/dashboard",
    browser: httpx.AsyncClient | None = None,
) -> SignIn:
    """Click "Continue with …" and follow every redirect up to kibitz's callback, then call it."""
    browser = browser or httpx.AsyncClient(timeout=30, trust_env=False)
    params = {"redirect": redirect, **({"login_hint": login_hint} if login_hint else {})}
    html = {"accept": "text/html"}
    answer = await browser.get(
        f"{world.gateway}/auth/sso/{provider_id}/start", params=params, headers=html
    )
    assert answer.status_code == 302, answer.text
    url = answer.headers["location"]
    callback_prefix = f"{world.gateway}/auth/sso/{provider_id}/callback"
    for _ in range(10):
        if url.startswith(callback_prefix):
            break
        answer = await browser.get(url, headers=html)
        assert answer.status_code in (302, 303), (url, answer.status_code, answer.text[:500])
        url = urljoin(url, answer.headers["location"])
    else:
        raise AssertionError("never came back to kibitz")
    callback = await browser.get(url, headers=html)
    return SignIn(callback=callback, callback_url=url, browser=browser)


@pytest.fixture(scope="module", params=DATABASES)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SsoWorld]:
    """kibitz behind its gateway on a known port, trusting the test OIDC provider ("corp") and a
    local GitHub ("github"); on SQLite and on PostgreSQL."""
    work_dir = tmp_path_factory.mktemp("sso")
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    client = OidcClient(
        CORP_CLIENT.client_id,
        CORP_CLIENT.client_secret,
        [f"{gateway}/auth/sso/{CORP_PROVIDER}/callback"],
    )
    async with (
        oidc_provider(clients=[client], users=[], work_dir=work_dir) as idp,
        fake_github(client_id="gh-client", client_secret="gh-secret-123") as github,
    ):
        providers = [
            {
                "id": CORP_PROVIDER,
                "name": "Corp ID",
                "issuer": idp.issuer,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            },
            {
                "id": GITHUB_PROVIDER,
                "name": "GitHub",
                "kind": "github",
                "client_id": github.client_id,
                "client_secret": github.client_secret,
                "github_url": github.url,
                "github_api_url": github.url,
            },
        ]
        env = {
            "KIBITZ_AUTH_SSO_PROVIDERS": json.dumps(providers),
            "KIBITZ_AUTH_PUBLIC_URL": gateway,
            # Tenants' providers are the test provider on loopback.
            "KIBITZ_AUTH_SSO_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
            # Every test signs in from 127.0.0.1.
            "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "10000",
        }
        async with start_stack(
            ["gateway", "auth", "tenants"],
            data_dir=work_dir / "data",
            database=str(request.param),
            env=env,
            port=port,
        ) as stack:
            yield SsoWorld(stack=stack, idp=idp, github=github)


@pytest.fixture
def data_dir(world: SsoWorld) -> Path:
    """Where the stack keeps its files."""
    return world.stack.data_dir
