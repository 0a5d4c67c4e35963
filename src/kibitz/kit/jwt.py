"""JWT access tokens: EdDSA signing for the auth service, JWKS-backed verification for everyone."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from kibitz.kit.session_revocations import SessionRevocations

ISSUER = "kibitz-auth"
AUDIENCE = "kibitz"
ALGORITHM = "EdDSA"
# 15 min: how long a revoked session's id stays on every process's revocation list.
ACCESS_TOKEN_SECONDS = 15 * 60
# An unknown kid triggers a JWKS refetch at most this often (seconds), so forged kids cannot
# turn every request into a call to the auth service.
_UNKNOWN_KID_REFETCH_SECONDS = 5.0
_JWKS_CACHE_SECONDS = 300.0
# Verified tokens are remembered until they expire (a signature check per request costs more
# than the rest of a small request); the memory is dropped whole when it grows this large.
_VERIFIED_CACHE_MAX = 10_000


class InvalidToken(Exception):
    """The token is missing, malformed, expired or not ours."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the access token says."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    token_id: str
    # Set when the token was issued for a personal API key (its id): the key's user, acting
    # through a key, may do what they may do except what needs them in person.
    api_key_id: str | None = None
    # The session (refresh token family) the token belongs to: revoked at logout.
    session_id: str | None = None


class SigningKey:
    """An Ed25519 private key with its key id."""

    def __init__(self, private_key: Ed25519PrivateKey, kid: str) -> None:
        self.private_key = private_key
        self.kid = kid

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key with a random kid."""
        return cls(Ed25519PrivateKey.generate(), uuid.uuid4().hex)

    @classmethod
    def from_pem(cls, pem: bytes, kid: str) -> SigningKey:
        """Load a PEM-encoded PKCS#8 key."""
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing key must be Ed25519")
        return cls(key, kid)

    def to_pem(self) -> bytes:
        """PEM-encoded PKCS#8 (store it with care)."""
        return self.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK."""
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key())
        )
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return jwk

    def issue_access_token(
        self,
        *,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        role: str,
        now: float | None = None,
        api_key_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
    ) -> str:
        """A signed access token with the claims of DESIGN.md, plus `sid` (its session, which
        logout revokes) or `akid` for an API key's."""
        issued_at = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ACCESS_TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        if api_key_id is not None:
            claims["akid"] = str(api_key_id)
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class TokenVerifier:
    """Verifies access tokens against the auth service's JWKS (cached, refetched on unknown kid)."""

    def __init__(
        self, fetch_jwks: JwksFetcher, revocations: SessionRevocations | None = None
    ) -> None:
        self._fetch_jwks = fetch_jwks
        self._revocations = revocations or SessionRevocations()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        # token -> (principal, expiry (epoch s), signing key id)
        self._verified: dict[str, tuple[Principal, float, str]] = {}

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if self._keys and age < (
                _UNKNOWN_KID_REFETCH_SECONDS if force else _JWKS_CACHE_SECONDS
            ):
                return
            document = await self._fetch_jwks()
            keys = {}
            for entry in document.get("keys", []):
                if entry.get("kid") and entry.get("alg", ALGORITHM) == ALGORITHM:
                    keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM)
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        if not self._keys or time.monotonic() - self._fetched_at > _JWKS_CACHE_SECONDS:
            await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        if kid not in self._keys:
            raise InvalidToken("unknown signing key")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        """The token's principal, or `InvalidToken`."""
        known = self._verified.get(token)
        if known is not None:
            if time.monotonic() - self._fetched_at > _JWKS_CACHE_SECONDS:
                await self._refresh(force=False)  # a retired key must stop verifying
            principal, expires_at, kid = known
            if time.time() < expires_at and kid in self._keys:
                self._refuse_revoked(principal)
                return principal
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        # Only EdDSA: refuses `none` and HS256-with-the-public-key confusion up front.
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise InvalidToken("unsupported token algorithm")
        key = await self._key_for(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud", "jti"]},
            )
            principal = Principal(
                user_id=uuid.UUID(claims["sub"]),
                tenant_id=uuid.UUID(claims["tid"]),
                role=str(claims["role"]),
                token_id=str(claims["jti"]),
                api_key_id=str(claims["akid"]) if claims.get("akid") else None,
                session_id=str(claims["sid"]) if claims.get("sid") else None,
            )
            expires_at = float(claims["exp"])
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken("invalid token") from exc
        if len(self._verified) >= _VERIFIED_CACHE_MAX:
            self._verified.clear()
        self._verified[token] = (principal, expires_at, header["kid"])
        self._refuse_revoked(principal)
        return principal

    def _refuse_revoked(self, principal: Principal) -> None:
        # A dict lookup per request: the price of a logout that takes effect at once.
        if principal.session_id is not None and self._revocations.is_revoked(principal.session_id):
            raise InvalidToken("the session has ended")
