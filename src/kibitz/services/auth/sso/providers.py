"""Identity providers kibitz signs people in through, with authlib: OpenID Connect (any issuer,
authorization code + PKCE, the ID token checked against the issuer's keys) and GitHub (OAuth 2,
the verified primary email from its API)."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from kibitz.kit.address_guard import (
    AllowList,
    PinnedTransport,
    UnsafeAddressError,
    check_base_url,
)
from kibitz.services.auth.sso.errors import SignInFailed

logger = structlog.get_logger("kibitz.auth.sso")

# 1 h: issuers change their configuration rarely; a new signing key is fetched on first sight.
DISCOVERY_CACHE_SECONDS = 3600.0
# 60 s: an unknown `kid` refetches the JWKS at most this often (rotation, not a flood of forgeries).
JWKS_REFETCH_SECONDS = 60.0
# 10 s per call to a provider: the person is waiting on the other end.
PROVIDER_TIMEOUT_SECONDS = 10.0
# 2 min of clock skew between us and the issuer.
ID_TOKEN_LEEWAY_SECONDS = 120
# Signature algorithms an ID token may use: asymmetric only ("none" and HS* never).
_ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


@dataclass(frozen=True)
class ExternalIdentity:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class SignInRequest:
    """What a sign-in carries from its start to its callback (sealed in the browser's cookie)."""

    redirect_uri: str
    state: str
    nonce: str
    code_verifier: str


@dataclass
class _IssuerDocuments:
    metadata: dict[str, Any]
    fetched_at: float
    jwks: dict[str, Any] | None = None
    jwks_fetched_at: float = 0.0


@dataclass
class DiscoveryCache:
    """Issuers' `/.well-known/openid-configuration` and JWKS, cached per issuer."""

    documents: dict[str, _IssuerDocuments] = field(default_factory=dict)

    async def metadata(self, issuer: str, guard: AllowList | None = None) -> dict[str, Any]:
        """The issuer's configuration (its `issuer` must be the one asked for: OIDC Discovery
        4.3, so a document cannot speak for another issuer)."""
        cached = self.documents.get(issuer)
        if cached and time.monotonic() - cached.fetched_at < DISCOVERY_CACHE_SECONDS:
            return cached.metadata
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = await _get_json(url, guard=guard)
        if metadata.get("issuer") != issuer:
            logger.warning("sso_discovery_issuer_mismatch", issuer=issuer)
            raise SignInFailed("sso_unavailable", "discovery names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(name), str):
                raise SignInFailed("sso_unavailable", f"discovery lacks {name}")
        self.documents[issuer] = _IssuerDocuments(metadata=metadata, fetched_at=time.monotonic())
        return metadata

    async def key_set(
        self, issuer: str, *, refresh: bool = False, guard: AllowList | None = None
    ) -> KeySet:
        """The issuer's public keys; `refresh` refetches them (an unknown `kid`), rate limited."""
        await self.metadata(issuer, guard)
        documents = self.documents[issuer]
        stale = time.monotonic() - documents.jwks_fetched_at >= JWKS_REFETCH_SECONDS
        if documents.jwks is None or (refresh and stale):
            documents.jwks = await _get_json(documents.metadata["jwks_uri"], guard=guard)
            documents.jwks_fetched_at = time.monotonic()
        try:
            return KeySet.import_key_set(documents.jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInFailed("sso_unavailable", "the issuer's JWKS is unusable") from exc


async def _pinned_transport(url: str, guard: AllowList | None) -> PinnedTransport | None:
    """For a tenant's provider (`guard` set): the URL's checked address, so a tenant cannot make
    auth call into the private network (SSRF); None for the deployment's own providers."""
    if guard is None:
        return None
    try:
        return PinnedTransport(await check_base_url(url, guard))
    except UnsafeAddressError as exc:
        raise SignInFailed("sso_unavailable", f"refused provider address: {exc}") from exc


async def _get_json(
    url: str, headers: dict[str, str] | None = None, *, guard: AllowList | None = None
) -> dict[str, Any]:
    transport = await _pinned_transport(url, guard)
    try:
        async with httpx2.AsyncClient(
            timeout=PROVIDER_TIMEOUT_SECONDS, transport=transport
        ) as client:
            response = await client.get(url, headers=headers)
    except httpx2.HTTPError as exc:
        raise SignInFailed("sso_unavailable", f"cannot reach {url}") from exc
    if response.status_code != 200:
        raise SignInFailed("sso_unavailable", f"{url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise SignInFailed("sso_unavailable", f"{url} answered no JSON") from exc
    if not isinstance(body, dict):
        raise SignInFailed("sso_unavailable", f"{url} answered no JSON object")
    return body


class IdentityProvider:
    """A provider people sign in through."""

    id: str
    name: str
    kind: str
    # Set for a tenant's own provider: people it signs in belong to this tenant.
    tenant_id: Any = None
    domains: frozenset[str] = frozenset()

    async def authorization_url(self, request: SignInRequest, *, login_hint: str | None) -> str:
        """Where to send the browser to sign in."""
        raise NotImplementedError

    async def identity(self, request: SignInRequest, *, code: str) -> ExternalIdentity:
        """Redeem the authorization code and say who signed in."""
        raise NotImplementedError


def _client(
    *,
    client_id: str,
    client_secret: str,
    scope: str,
    redirect_uri: str,
    auth_method: str = "client_secret_basic",
    transport: PinnedTransport | None = None,
) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
        timeout=PROVIDER_TIMEOUT_SECONDS,
        transport=transport,
    )


async def _fetch_token(client: AsyncOAuth2Client, url: str, *, code: str, verifier: str) -> Any:
    try:
        return await client.fetch_token(url, code=code, code_verifier=verifier)
    except httpx2.HTTPError as exc:
        logger.warning("sso_token_endpoint_unreachable", error=repr(exc))
        raise SignInFailed("sso_unavailable", "cannot reach the token endpoint") from exc
    except Exception as exc:  # authlib's OAuthError, or a malformed answer
        raise SignInFailed("sso_failed", f"token exchange refused: {type(exc).__name__}") from exc


class OidcProvider(IdentityProvider):
    """Any OpenID Connect issuer (Google, Microsoft, Okta, Keycloak…)."""

    kind = "oidc"

    def __init__(
        self,
        *,
        id: str,
        name: str,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        discovery: DiscoveryCache,
        tenant_id: Any = None,
        domains: frozenset[str] = frozenset(),
        guard: AllowList | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = scopes
        self._discovery = discovery
        self.tenant_id = tenant_id
        self.domains = domains
        self._guard = guard

    def _oauth(
        self, redirect_uri: str, transport: PinnedTransport | None = None
    ) -> AsyncOAuth2Client:
        return _client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=self.scopes,
            redirect_uri=redirect_uri,
            transport=transport,
        )

    async def authorization_url(self, request: SignInRequest, *, login_hint: str | None) -> str:
        """The issuer's authorization endpoint with PKCE (S256), `state` and `nonce`."""
        metadata = await self._discovery.metadata(self.issuer, self._guard)
        extra = {"login_hint": login_hint} if login_hint else {}
        async with self._oauth(request.redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=request.state,
                code_verifier=request.code_verifier,
                nonce=request.nonce,
                **extra,
            )
        return str(url)

    async def identity(self, request: SignInRequest, *, code: str) -> ExternalIdentity:
        """Redeem the code; the ID token must be signed by the issuer's key and name this
        issuer, this client, this sign-in's nonce, and not be expired."""
        metadata = await self._discovery.metadata(self.issuer, self._guard)
        # Pinned to the token endpoint's checked address (a userinfo elsewhere is then skipped).
        transport = await _pinned_transport(metadata["token_endpoint"], self._guard)
        async with self._oauth(request.redirect_uri, transport) as client:
            token = await _fetch_token(
                client, metadata["token_endpoint"], code=code, verifier=request.code_verifier
            )
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise SignInFailed("sso_failed", "no ID token in the token answer")
            claims = await self._verified_claims(metadata, id_token, request, token)
            if "email" not in claims and isinstance(metadata.get("userinfo_endpoint"), str):
                claims = {**claims, **await self._userinfo(client, metadata, claims["sub"])}
        return ExternalIdentity(
            subject=str(claims["sub"]),
            email=str(claims["email"]).strip().lower() if claims.get("email") else None,
            # Only a JSON true counts: "true" strings and absent claims are not verification.
            email_verified=claims.get("email_verified") is True,
            name=str(claims["name"])[:200] if claims.get("name") else None,
        )

    async def _verified_claims(
        self,
        metadata: dict[str, Any],
        id_token: str,
        request: SignInRequest,
        token: dict[str, Any],
    ) -> dict[str, Any]:
        advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in advertised if alg in _ASYMMETRIC_ALGORITHMS]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                keys = await self._discovery.key_set(self.issuer, guard=self._guard)
                decoded = jwt.decode(id_token, keys, registry=registry)
            except InvalidKeyIdError:
                keys = await self._discovery.key_set(self.issuer, refresh=True, guard=self._guard)
                decoded = jwt.decode(id_token, keys, registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": self.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                    "nonce": {"essential": True},
                },
                {
                    "nonce": request.nonce,
                    "client_id": self.client_id,
                    "access_token": token.get("access_token"),
                },
            )
            claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInFailed("sso_failed", f"ID token refused: {type(exc).__name__}") from exc
        # Checked here as well, in constant time: the nonce is what binds the token to us.
        if not hmac.compare_digest(str(claims.get("nonce", "")), request.nonce):
            raise SignInFailed("sso_failed", "ID token refused: nonce")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInFailed("sso_failed", "ID token refused: sub")
        return dict(claims)

    async def _userinfo(
        self, client: AsyncOAuth2Client, metadata: dict[str, Any], subject: str
    ) -> dict[str, Any]:
        try:
            response = await client.get(metadata["userinfo_endpoint"])
            info = response.json() if response.status_code == 200 else {}
        except (httpx2.HTTPError, ValueError):
            info = {}
        # OIDC Core 5.3.2: userinfo about anyone else must not be used.
        if not isinstance(info, dict) or info.get("sub") != subject:
            return {}
        return {key: info[key] for key in ("email", "email_verified", "name") if key in info}


class GithubProvider(IdentityProvider):
    """GitHub's OAuth app flow; the email is the account's verified primary one."""

    kind = "github"

    def __init__(
        self,
        *,
        id: str,
        name: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        github_url: str,
        api_url: str,
    ) -> None:
        self.id = id
        self.name = name
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = scopes
        self._github_url = github_url.rstrip("/")
        self._api_url = api_url.rstrip("/")

    def _oauth(self, redirect_uri: str) -> AsyncOAuth2Client:
        return _client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=self.scopes,
            redirect_uri=redirect_uri,
            # GitHub documents the client credentials as form parameters.
            auth_method="client_secret_post",
        )

    async def authorization_url(self, request: SignInRequest, *, login_hint: str | None) -> str:
        """GitHub's authorize page, with PKCE and `state` (GitHub's `login` hint is a username,
        not an email, so the email hint is not passed on)."""
        async with self._oauth(request.redirect_uri) as client:
            url, _ = client.create_authorization_url(
                f"{self._github_url}/login/oauth/authorize",
                state=request.state,
                code_verifier=request.code_verifier,
            )
        return str(url)

    async def identity(self, request: SignInRequest, *, code: str) -> ExternalIdentity:
        """Redeem the code, then read the user and their emails from the REST API."""
        async with self._oauth(request.redirect_uri) as client:
            token = await _fetch_token(
                client,
                f"{self._github_url}/login/oauth/access_token",
                code=code,
                verifier=request.code_verifier,
            )
        access_token = token.get("access_token")
        if not isinstance(access_token, str):
            raise SignInFailed("sso_failed", "no access token from GitHub")
        headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        user = await _get_json(f"{self._api_url}/user", headers)
        emails = await _get_json_list(f"{self._api_url}/user/emails", headers)
        primary = next(
            (entry for entry in emails if isinstance(entry, dict) and entry.get("primary")), None
        )
        if not isinstance(user.get("id"), int) or primary is None:
            raise SignInFailed("sso_failed", "GitHub answered no user or no primary email")
        name = user.get("name") or user.get("login")
        return ExternalIdentity(
            subject=str(user["id"]),
            email=str(primary.get("email", "")).strip().lower() or None,
            email_verified=primary.get("verified") is True,
            name=str(name)[:200] if name else None,
        )


async def _get_json_list(url: str, headers: dict[str, str]) -> list[Any]:
    try:
        async with httpx2.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS) as client:
            response = await client.get(url, headers=headers)
        body = response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError) as exc:
        raise SignInFailed("sso_unavailable", f"cannot read {url}") from exc
    if not isinstance(body, list):
        raise SignInFailed("sso_unavailable", f"{url} answered no list")
    return body
