"""Personal API keys at the gateway: `Bearer kbz_…` exchanged with auth for the key user's access
token, remembered briefly, forgotten at once when the key is revoked.

Services behind the gateway keep verifying the same JWTs: the gateway puts the exchanged access
token in the request's Authorization header before it forwards it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog

from kibitz.contracts.events import ApiKeyRevoked
from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable, Unauthorized
from kibitz.kit.events import EventEnvelope
from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import Principal

logger = structlog.get_logger("kibitz.gateway.api_keys")

API_KEY_PREFIX = "kbz_"
# Bounded so that a flood of distinct keys cannot grow memory without limit.
_MAX_REMEMBERED_KEYS = 10_000
# 5 s: a refused key is not sent to auth again for this long (a script retrying a bad key in a
# loop costs one exchange per 5 s, not one per request).
_REFUSED_SECONDS = 5.0
# 5 s: an exchange sits on a user's request path.
_EXCHANGE_TIMEOUT_SECONDS = 5.0
# The exchanged token is used this much before its own expiry at most (clock skew, slow hops).
_TOKEN_MARGIN_SECONDS = 30.0


def is_api_key(token: str) -> bool:
    """Whether a bearer token is a personal API key (rather than an access token)."""
    return token.startswith(API_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """What a key stands for: its user's principal and an access token to forward."""

    key_id: uuid.UUID
    principal: Principal
    access_token: str


class ApiKeyExchange:
    """Exchanges keys with the auth service; remembers answers for `cache_seconds` at most.

    Remembered by the key's SHA-256, never by the key, so a heap dump shows no keys.
    """

    def __init__(self, auth: ServiceClient, *, cache_seconds: float) -> None:
        self._auth = auth
        self._cache_seconds = cache_seconds
        self._known: dict[str, tuple[float, KeyIdentity]] = {}
        self._refused: dict[str, float] = {}
        self._lookups: dict[str, asyncio.Task[KeyIdentity]] = {}
        # Bumped by every revocation, so an exchange that started before it stores nothing.
        self._revocations = 0

    async def identity(self, key: str) -> KeyIdentity:
        """The key's identity, or 401 (unknown, revoked or expired); 503 when auth cannot say."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None:
            if now < known[0]:
                return known[1]
            del self._known[digest]
        refused_until = self._refused.get(digest)
        if refused_until is not None:
            if now < refused_until:
                raise _refusal()
            del self._refused[digest]
        lookup = self._lookups.get(digest)
        if lookup is None:
            # One exchange at a time per key: a burst of requests with a new key costs one call.
            lookup = asyncio.create_task(self._exchange(key, digest))
            self._lookups[digest] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(lookup)

    async def _exchange(self, key: str, digest: str) -> KeyIdentity:
        revocations = self._revocations
        try:
            response = await self._auth.request(
                "POST",
                "/auth/internal/api-keys/exchange",
                json={"key": key},
                timeout=_EXCHANGE_TIMEOUT_SECONDS,
            )
        except (ServiceUnavailable, GatewayTimeout) as exc:
            raise ServiceUnavailable(
                "API keys cannot be checked right now.", retry_after=5
            ) from exc
        if response.status_code in (401, 422):
            self._remember_refusal(digest)
            raise _refusal()
        if response.status_code != 200:
            logger.warning("api_key_exchange_failed", status=response.status_code)
            raise ServiceUnavailable("API keys cannot be checked right now.", retry_after=5)
        answer = response.json()
        identity = KeyIdentity(
            key_id=uuid.UUID(answer["key_id"]),
            principal=Principal(
                user_id=uuid.UUID(answer["user_id"]),
                tenant_id=uuid.UUID(answer["tenant_id"]),
                role=str(answer["role"]),
                token_id="",
                api_key_id=str(answer["key_id"]),
            ),
            access_token=str(answer["access_token"]),
        )
        lifetime = min(
            self._cache_seconds,
            float(answer["expires_in"]) - _TOKEN_MARGIN_SECONDS,
            _seconds_until(answer.get("key_expires_at")),
        )
        if lifetime > 0 and revocations == self._revocations:
            if len(self._known) >= _MAX_REMEMBERED_KEYS:
                self._known.clear()
            self._known[digest] = (time.monotonic() + lifetime, identity)
        return identity

    def _remember_refusal(self, digest: str) -> None:
        if len(self._refused) >= _MAX_REMEMBERED_KEYS:
            self._refused.clear()
        self._refused[digest] = time.monotonic() + _REFUSED_SECONDS

    def forget(self, key_id: uuid.UUID) -> None:
        """Stop honouring what is remembered of this key (it was revoked)."""
        self._revocations += 1
        for digest, (_, identity) in list(self._known.items()):
            if identity.key_id == key_id:
                self._known.pop(digest, None)

    async def on_api_key_revoked(self, envelope: EventEnvelope) -> None:
        """Bus handler for `auth.api_key_revoked`."""
        event = ApiKeyRevoked.model_validate(envelope.payload)
        self.forget(event.key_id)
        logger.info("api_key_forgotten", key_id=str(event.key_id))


def _refusal() -> Unauthorized:
    return Unauthorized(
        "Invalid, expired or revoked API key.",
        problem_type="invalid-api-key",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _seconds_until(moment: object) -> float:
    """Seconds until an ISO 8601 time (infinity when there is none)."""
    if not isinstance(moment, str):
        return float("inf")
    return datetime.fromisoformat(moment).timestamp() - time.time()
