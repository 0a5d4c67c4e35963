"""Single sign-on in a real browser: "Continue with …" on /login and /register, the round trip
through the real OpenID Connect provider (tests/fixtures/oidc), an owner setting up the
organisation's own provider in /settings, and a colleague signing in through it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc.jwk import RSAKey
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.browser.conftest import DESKTOP, run_kibitz
from tests.browser.kibitz_app import PASSWORD, Kibitz
from tests.fixtures.oidc_provider import OidcClient, OidcUser, node_oidc_provider
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.browser

PROVIDER_NAME = "Corp ID"


@dataclass
class SsoSite:
    """kibitz and the identity provider it trusts."""

    kibitz: Kibitz
    issuer: str
    config_path: Path

    def person(self, domain: str = "example.org") -> OidcUser:
        """A new person at the identity provider."""
        user = OidcUser(sub=uuid.uuid4().hex, email=f"p-{uuid.uuid4().hex[:8]}@{domain}")
        config = json.loads(self.config_path.read_text())
        config["users"].append(user.__dict__)
        staged = self.config_path.with_suffix(".tmp")
        staged.write_text(json.dumps(config))
        staged.replace(self.config_path)
        return user


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoSite]:
    work_dir = tmp_path_factory.mktemp("sso-browser")
    port, idp_port = free_port(), free_port()
    url, issuer = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{idp_port}"
    client = OidcClient("kibitz-web", "web-secret-123", [f"{url}/auth/sso/corp/callback"])
    with node_oidc_provider(
        issuer=issuer,
        port=idp_port,
        signing_key=RSAKey.generate_key(2048, parameters={"kid": "browser-key", "use": "sig"}),
        clients=[client],
        users=[],
        work_dir=work_dir,
    ) as config_path:
        providers = [
            {
                "id": "corp",
                "name": PROVIDER_NAME,
                "issuer": issuer,
                "client_id": client.client_id,
                "client_secret": client.client_secret,
            }
        ]
        env = {
            "KIBITZ_AUTH_SSO_PROVIDERS": json.dumps(providers),
            "KIBITZ_AUTH_PUBLIC_URL": url,
            "KIBITZ_AUTH_SSO_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
        }
        data_dir = work_dir / "data"
        data_dir.mkdir()
        with run_kibitz(data_dir, env, port=port) as kibitz:
            yield SsoSite(kibitz=kibitz, issuer=issuer, config_path=config_path)


@pytest.fixture
def sso_page(browser: Browser, site: SsoSite) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(base_url=site.kibitz.url, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_signing_in_with_the_deployments_provider_from_the_login_page(
    site: SsoSite, sso_page: Page
) -> None:
    person = site.person()
    page = sso_page
    page.goto("/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}").click()
    # The provider knew the person from the login hint: straight back, signed in.
    page.wait_for_url("**/dashboard")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto("/settings#sign-in")
    identities = page.get_by_role("list", name="Linked identities")
    expect(identities).to_contain_text(PROVIDER_NAME)
    expect(identities).to_contain_text(person.email)
    expect(page.get_by_role("button", name="Add password")).to_be_visible()


def test_signing_up_with_the_provider_asking_who_you_are(site: SsoSite, sso_page: Page) -> None:
    person = site.person()
    page = sso_page
    page.goto("/register")
    page.get_by_role("link", name=f"Sign up with {PROVIDER_NAME}").click()
    # No email typed: the provider's own sign-in page asks.
    page.get_by_label("Email").fill(person.email)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")
    # Signed in once the dashboard shows: leaving while its refresh is in flight could cancel
    # the answer that carries the rotated refresh cookie (the next test covers leaving earlier).
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.goto("/settings#sign-in")
    expect(page.get_by_role("list", name="Linked identities")).to_contain_text(person.email)


def test_a_page_left_before_its_first_refresh_answers_keeps_the_sign_on(
    site: SsoSite, sso_page: Page
) -> None:
    person = site.person()
    page = sso_page
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        # The dashboard's refresh never reaches the server, as on a machine too busy to send it
        # before the person (or a test) moves on; later refreshes go through.
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route("**/auth/refresh", hold_the_first)
    page.goto("/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}").click()
    page.wait_for_url("**/dashboard")
    expect(page.get_by_text("Signing you in…")).to_be_visible()
    assert len(held) == 1
    page.goto("/settings#sign-in")
    expect(page.get_by_role("list", name="Linked identities")).to_contain_text(person.email)


def test_a_failed_sign_in_comes_back_to_the_login_page_in_words(
    site: SsoSite, sso_page: Page
) -> None:
    page = sso_page
    # The provider's answer arrives without the sign-in this browser started.
    page.goto("/auth/sso/corp/callback?code=stolen&state=forged")
    page.wait_for_url("**/login?error=sso_expired")
    expect(page.get_by_role("alert")).to_contain_text("Please start again")
    assert "stolen" not in page.content()


def test_an_owner_sets_up_the_organisations_provider_and_a_colleague_signs_in(
    site: SsoSite, sso_page: Page, browser: Browser
) -> None:
    domain = f"b{uuid.uuid4().hex[:8]}.example"
    owner_email = f"owner@{domain}"
    registered = site.kibitz.api(
        "POST", "/auth/register", json={"email": owner_email, "password": PASSWORD}
    )
    assert registered.status_code == 201
    page = sso_page
    page.goto("/login")
    page.get_by_label("Email").fill(owner_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard")
    page.goto("/settings#sso")
    form = page.get_by_role("form", name="Single sign-on settings")
    form.get_by_label("Issuer URL").fill(site.issuer)
    form.get_by_label("Client ID").fill("pending")
    form.get_by_label("Client secret").fill("pending")
    form.get_by_label("Email domains").fill(domain)
    form.get_by_role("button", name="Save single sign-on").click()
    callback = form.locator("code")
    expect(callback).to_contain_text("/callback")
    # At the provider: register kibitz's client with the callback URL the page shows.
    registration = httpx.post(
        f"{site.issuer}/reg",
        json={"redirect_uris": [callback.inner_text()], "grant_types": ["authorization_code"]},
    ).json()
    form.get_by_label("Client ID").fill(registration["client_id"])
    form.get_by_label("Client secret").fill(registration["client_secret"])
    form.get_by_label("Require single sign-on").check()
    form.get_by_role("button", name="Save single sign-on").click()
    expect(form.get_by_text("Single sign-on saved.")).to_be_visible()
    assert registration["client_secret"] not in page.content()

    colleague = site.person(domain=domain)
    other: BrowserContext = browser.new_context(base_url=site.kibitz.url, viewport=DESKTOP)
    other.set_default_timeout(15_000)
    colleague_page = other.new_page()
    colleague_page.goto("/login")
    colleague_page.get_by_label("Email").fill(colleague.email)
    options = colleague_page.get_by_role("link", name="Continue with your organisation")
    expect(options).to_have_count(1)
    # Enforced: the deployment's own provider is not offered for this domain.
    expect(colleague_page.get_by_role("link", name=f"Continue with {PROVIDER_NAME}")).to_have_count(
        0
    )
    options.click()
    colleague_page.wait_for_url("**/dashboard")
    colleague_page.goto("/settings")
    expect(colleague_page.get_by_role("link", name="Single sign-on")).to_have_count(0)
    other.close()
    # The owner now has to come through the provider too.
    refused = site.kibitz.api(
        "POST", "/auth/login", json={"email": owner_email, "password": PASSWORD}
    )
    assert refused.status_code == 403
