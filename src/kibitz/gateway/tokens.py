"""The gateway's token check: the kit's JWKS verifier, with verified tokens remembered briefly."""

from __future__ import annotations

import base64
import json
import time

from kibitz.kit.jwt import InvalidToken, Principal, TokenVerifier

# Bounded so that a flood of distinct valid tokens cannot grow memory without limit.
_MAX_REMEMBERED_TOKENS = 10_000
# 60 s: a remembered token is re-verified at least this often (e.g. after a key rotation).
_REMEMBER_SECONDS = 60.0


class TokenCheck:
    """Verifies access tokens; a token seen valid is trusted until its `exp` (at most 60 s).

    An Ed25519 signature check costs tens of microseconds; clients repeat the same token on every
    request for 15 minutes, so remembering it takes that work off the proxy's hot path.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier
        self._valid: dict[str, tuple[float, Principal]] = {}

    async def principal(self, token: str) -> Principal:
        """The token's principal, or `InvalidToken`."""
        remembered = self._valid.get(token)
        now = time.time()
        if remembered is not None:
            valid_until, principal = remembered
            if now < valid_until:
                return principal
            del self._valid[token]
        principal = await self._verifier.verify(token)
        if len(self._valid) >= _MAX_REMEMBERED_TOKENS:
            self._valid.clear()
        self._valid[token] = (min(_expiry_of(token), now + _REMEMBER_SECONDS), principal)
        return principal


def _expiry_of(token: str) -> float:
    """The `exp` claim of a token whose signature was already verified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("invalid token") from exc
