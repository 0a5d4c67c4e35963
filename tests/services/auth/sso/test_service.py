"""Tenants' own identity providers, enforcement, and the ways into an account: the business
rules of single sign-on, through the gateway and the real OpenID Connect provider."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.oidc_provider import OidcUser
from tests.fixtures.stack import Account
from tests.services.auth.sso.conftest import CORP_PROVIDER, SsoWorld, sign_in


@dataclass
class TenantSso:
    """A tenant whose owner configured the tenant's provider."""

    owner: Account
    provider_id: str
    domain: str
    client_secret: str


def _domain() -> str:
    return f"t{uuid.uuid4().hex[:10]}.example"


async def _put(world: SsoWorld, owner: Account, **body: Any) -> httpx.Response:
    return await world.stack.http.put(
        f"{world.gateway}/auth/sso/tenant", json=body, headers=owner.headers
    )


async def _tenant_with_provider(world: SsoWorld, *, enforce: bool = False) -> TenantSso:
    """Configure as an owner would: save, copy the redirect URI to the provider (dynamic client
    registration here), then save the client it issued."""
    domain = _domain()
    owner = await world.stack.register(f"owner@{domain}")
    first = await _put(
        world,
        owner,
        issuer=world.idp.issuer,
        client_id="not-yet",
        client_secret="not-yet",
        domains=[domain],
    )
    assert first.status_code == 200, first.text
    client = await world.idp.register_client(first.json()["redirect_uri"])
    second = await _put(
        world,
        owner,
        issuer=world.idp.issuer,
        client_id=client.client_id,
        client_secret=client.client_secret,
        domains=[domain],
        enforce=enforce,
    )
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    return TenantSso(owner, first.json()["id"], domain, client.client_secret)


async def _session_of(world: SsoWorld, browser: httpx.AsyncClient) -> dict[str, Any]:
    refreshed = await browser.post(
        f"{world.gateway}/auth/refresh", json={}, headers={"x-kibitz-client": "web"}
    )
    assert refreshed.status_code == 200, refreshed.text
    return dict(refreshed.json())


async def test_a_new_person_through_the_tenants_provider_joins_that_tenant(
    world: SsoWorld,
) -> None:
    tenant = await _tenant_with_provider(world)
    person = world.person(domain=tenant.domain)
    signed = await sign_in(world, tenant.provider_id, login_hint=person.email)
    assert signed.location == "/dashboard", signed.location
    session = await _session_of(world, signed.browser)
    assert session["user"]["tenant_id"] == tenant.owner.tenant_id
    assert session["user"]["role"] == "member"
    members = await world.stack.http.get(
        f"{world.gateway}/tenants/members", headers=tenant.owner.headers
    )
    assert person.email in members.text


async def test_the_providers_list_offers_the_tenants_provider_for_its_domain(
    world: SsoWorld,
) -> None:
    tenant = await _tenant_with_provider(world)
    listed = await world.stack.http.get(
        f"{world.gateway}/auth/sso/providers", params={"email": f"Someone@{tenant.domain.upper()}"}
    )
    ids = [item["id"] for item in listed.json()["items"]]
    assert ids == [tenant.provider_id, "corp", "github"]
    elsewhere = await world.stack.http.get(
        f"{world.gateway}/auth/sso/providers", params={"email": "someone@elsewhere.example"}
    )
    assert tenant.provider_id not in elsewhere.text


async def test_enforcement_refuses_passwords_for_the_tenants_people_naming_sso(
    world: SsoWorld,
) -> None:
    tenant = await _tenant_with_provider(world, enforce=True)
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login",
        json={"email": tenant.owner.email, "password": tenant.owner.password},
    )
    assert login.status_code == 403
    assert login.json()["type"].endswith("sso-required")
    assert "single sign-on" in login.json()["detail"]
    register = await world.stack.http.post(
        f"{world.gateway}/auth/register",
        json={"email": f"new@{tenant.domain}", "password": "a long enough password"},
    )
    assert register.status_code == 403
    assert register.json()["type"].endswith("sso-required")
    listed = await world.stack.http.get(
        f"{world.gateway}/auth/sso/providers", params={"email": f"new@{tenant.domain}"}
    )
    assert [item["id"] for item in listed.json()["items"]] == [tenant.provider_id]
    # The tenant's own provider still signs its people in.
    person = world.person(domain=tenant.domain)
    signed = await sign_in(world, tenant.provider_id, login_hint=person.email)
    assert signed.location == "/dashboard"


async def test_enforcement_refuses_the_deployments_providers_for_the_tenants_people(
    world: SsoWorld,
) -> None:
    tenant = await _tenant_with_provider(world, enforce=True)
    newcomer = world.person(domain=tenant.domain)
    signed = await sign_in(world, CORP_PROVIDER, login_hint=newcomer.email)
    assert signed.location == "/login?error=sso_required"
    world.idp.add_user(OidcUser(sub=uuid.uuid4().hex, email=tenant.owner.email))
    owner = await sign_in(world, CORP_PROVIDER, login_hint=tenant.owner.email)
    assert owner.location == "/login?error=sso_required"


async def test_enforcement_never_locks_out_another_tenants_people(world: SsoWorld) -> None:
    domain = _domain()
    # Registered in a tenant of their own before anyone claimed the domain.
    early = await world.stack.register(f"early@{domain}")
    owner = await world.stack.register(f"owner@{domain}")
    claimed = await _put(
        world,
        owner,
        issuer=world.idp.issuer,
        client_id="c",
        client_secret="s",
        domains=[domain],
        enforce=True,
    )
    assert claimed.status_code == 200
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login", json={"email": early.email, "password": early.password}
    )
    assert login.status_code == 200


async def test_a_domain_claimed_by_another_tenant_is_refused(world: SsoWorld) -> None:
    tenant = await _tenant_with_provider(world)
    rival = await world.stack.register()
    answer = await _put(
        world,
        rival,
        issuer=world.idp.issuer,
        client_id="rival",
        client_secret="rival-secret",
        domains=["rival-own.example", tenant.domain],
    )
    assert answer.status_code == 409
    assert tenant.domain in answer.json()["detail"]
    assert (
        await world.stack.http.get(f"{world.gateway}/auth/sso/tenant", headers=rival.headers)
    ).status_code == 404


async def test_public_mail_domains_cannot_be_claimed(world: SsoWorld) -> None:
    owner = await world.stack.register()
    answer = await _put(
        world,
        owner,
        issuer=world.idp.issuer,
        client_id="c",
        client_secret="s",
        domains=["gmail.com"],
    )
    assert answer.status_code == 422


async def test_only_the_owner_manages_the_tenants_provider(world: SsoWorld) -> None:
    tenant = await _tenant_with_provider(world)
    person = world.person(domain=tenant.domain)
    signed = await sign_in(world, tenant.provider_id, login_hint=person.email)
    member = {
        "Authorization": f"Bearer {(await _session_of(world, signed.browser))['access_token']}"
    }
    url = f"{world.gateway}/auth/sso/tenant"
    assert (await world.stack.http.get(url, headers=member)).status_code == 403
    assert (await world.stack.http.delete(url, headers=member)).status_code == 403
    put = await world.stack.http.put(
        url,
        headers=member,
        json={"issuer": world.idp.issuer, "client_id": "x", "client_secret": "y", "domains": []},
    )
    assert put.status_code == 403
    assert (await world.stack.http.get(url)).status_code == 401


async def test_the_client_secret_is_stored_encrypted_and_never_returned(world: SsoWorld) -> None:
    tenant = await _tenant_with_provider(world)
    read = await world.stack.http.get(
        f"{world.gateway}/auth/sso/tenant", headers=tenant.owner.headers
    )
    assert read.status_code == 200
    assert tenant.client_secret not in read.text
    assert "client_secret" not in read.json()
    assert read.json()["domains"] == [tenant.domain]
    database = world.stack.data_dir / "auth.db"
    if database.exists():  # SQLite: look at the stored row itself
        with sqlite3.connect(database) as connection:
            stored = connection.execute(
                "SELECT client_secret_encrypted FROM sso_tenant_providers WHERE id = ?",
                (uuid.UUID(tenant.provider_id).hex,),
            ).fetchall()
        assert stored and tenant.client_secret not in stored[0][0]
    # Saving without a secret keeps the stored one: sign-in still works.
    kept = await _put(
        world,
        tenant.owner,
        issuer=world.idp.issuer,
        client_id=read.json()["client_id"],
        domains=[tenant.domain],
    )
    assert kept.status_code == 200
    person = world.person(domain=tenant.domain)
    signed = await sign_in(world, tenant.provider_id, login_hint=person.email)
    assert signed.location == "/dashboard"


async def test_a_tenants_provider_speaks_only_for_its_own_domains(world: SsoWorld) -> None:
    tenant = await _tenant_with_provider(world)
    stranger = world.person(domain="elsewhere.example")
    signed = await sign_in(world, tenant.provider_id, login_hint=stranger.email)
    assert signed.location == "/login?error=sso_wrong_domain"


async def test_a_tenants_provider_cannot_take_over_another_tenants_account(
    world: SsoWorld,
) -> None:
    domain = _domain()
    victim = await world.stack.register(f"victim@{domain}")
    attacker = await world.stack.register(f"attacker@{domain}")
    put = await _put(
        world,
        attacker,
        issuer=world.idp.issuer,
        client_id="c",
        client_secret="s",
        domains=[domain],
    )
    client = await world.idp.register_client(put.json()["redirect_uri"])
    await _put(
        world,
        attacker,
        issuer=world.idp.issuer,
        client_id=client.client_id,
        client_secret=client.client_secret,
        domains=[domain],
    )
    world.idp.add_user(OidcUser(sub=uuid.uuid4().hex, email=victim.email))
    signed = await sign_in(world, put.json()["id"], login_hint=victim.email)
    assert signed.location == "/login?error=sso_account_elsewhere"
    me = await world.stack.http.get(f"{world.gateway}/auth/me", headers=victim.headers)
    assert me.json()["identities"] == []


async def test_removing_the_provider_releases_its_domains_and_enforcement(
    world: SsoWorld,
) -> None:
    tenant = await _tenant_with_provider(world, enforce=True)
    url = f"{world.gateway}/auth/sso/tenant"
    assert (await world.stack.http.delete(url, headers=tenant.owner.headers)).status_code == 204
    assert (await world.stack.http.get(url, headers=tenant.owner.headers)).status_code == 404
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login",
        json={"email": tenant.owner.email, "password": tenant.owner.password},
    )
    assert login.status_code == 200
    start = await world.stack.http.get(f"{world.gateway}/auth/sso/{tenant.provider_id}/start")
    assert start.headers["location"] == "/login?error=sso_unknown_provider"


# --- ways in --------------------------------------------------------------------------------


async def test_a_password_is_added_beside_an_identity_and_removed_again(world: SsoWorld) -> None:
    person = world.person()
    signed = await sign_in(world, CORP_PROVIDER, login_hint=person.email)
    session = await _session_of(world, signed.browser)
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    password_url = f"{world.gateway}/auth/me/password"
    added = await world.stack.http.put(
        password_url, json={"password": "my own password 42"}, headers=headers
    )
    assert added.status_code == 204, added.text
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login",
        json={"email": person.email, "password": "my own password 42"},
    )
    assert login.status_code == 200
    # Changing it needs the current one.
    wrong = await world.stack.http.put(
        password_url,
        json={"password": "another password 43", "current_password": "nope"},
        headers=headers,
    )
    assert wrong.status_code == 403
    removed = await world.stack.http.delete(password_url, headers=headers)
    assert removed.status_code == 204
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login",
        json={"email": person.email, "password": "my own password 42"},
    )
    assert login.status_code == 401
    me = await world.stack.http.get(f"{world.gateway}/auth/me", headers=headers)
    assert me.json()["has_password"] is False


async def test_the_only_way_in_cannot_be_removed(world: SsoWorld) -> None:
    account = await world.stack.register()
    removed = await world.stack.http.delete(
        f"{world.gateway}/auth/me/password", headers=account.headers
    )
    assert removed.status_code == 409
    login = await world.stack.http.post(
        f"{world.gateway}/auth/login", json={"email": account.email, "password": account.password}
    )
    assert login.status_code == 200


async def test_a_tenants_provider_in_the_private_network_is_refused(world: SsoWorld) -> None:
    """SSRF: only the allow-listed 127.0.0.1 may be private; other private, link-local (cloud
    metadata) or plain-http public issuers are refused before auth ever calls them."""
    owner = await world.stack.register()
    for issuer in (
        "http://169.254.169.254/latest",
        "http://10.0.0.8",
        "https://127.0.0.2:9",
        "https://0.0.0.0",
        "http://[::1]:8080",
        "ftp://idp.example",
        "https://127.0.0.1/x?y=1",
    ):
        answer = await _put(
            world, owner, issuer=issuer, client_id="c", client_secret="s", domains=[_domain()]
        )
        assert answer.status_code == 422, (issuer, answer.text)
        assert answer.json()["type"].endswith("sso-unsafe-issuer"), issuer
