"""The key ring: the signing keys in the auth database, one signing and every one not retired
verifying (published as the JWKS), reloaded every minute and rotated by the operator."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from kibitz.kit.db import Database
from kibitz.kit.jwt import ACCESS_TOKEN_SECONDS, SigningKey
from kibitz.services.auth.models import SigningKeyRecord
from kibitz.services.auth.schemas import as_utc
from kibitz.services.auth.signing_keys import repository

logger = structlog.get_logger("kibitz.auth")

# 10 s: keys change only on rotation; a replica's new key shows up in JWKS this soon.
_JWKS_CACHE_SECONDS = 10.0
# 60 s: how often each auth replica rereads which key signs.
KEY_RELOAD_SECONDS = 60.0
# A new key is published this long before it signs, so every JWKS that verifiers fetch
# (auth caches its own for 10 s) already holds it when the first token it signed arrives.
PUBLISH_AHEAD = timedelta(seconds=30)
# A rotated-out key stays published until every token it may have signed has expired: replicas
# sign with it until they reload after the new key's publish-ahead, and a token lives 15 min;
# 2 min more for clock skew.
ROTATED_KEY_GRACE = PUBLISH_AHEAD + timedelta(
    seconds=KEY_RELOAD_SECONDS + ACCESS_TOKEN_SECONDS + 120
)


@dataclass(frozen=True)
class RotatedKeys:
    """The outcome of a rotation: the new key, when it starts signing, until when the old ones
    verify."""

    kid: str
    signs_from: datetime
    verifying_until: dict[str, datetime]


def _signing_record(records: list[SigningKeyRecord], now: datetime) -> SigningKeyRecord:
    """The newest active key published at least PUBLISH_AHEAD ago; while none is, the oldest
    active one (replicas racing on a first start each store a key: all pick the same)."""
    active = [record for record in records if record.active]
    published = [record for record in active if as_utc(record.created_at) <= now - PUBLISH_AHEAD]
    return published[-1] if published else active[0]


class KeyRing:
    """The signing keys in the auth database: one signs (see `_signing_record`), every key not
    retired verifies."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._signing: SigningKey | None = None
        self._jwks: dict[str, Any] | None = None
        self._jwks_loaded_at = 0.0

    @property
    def signing_key(self) -> SigningKey:
        """The key new access tokens are signed with."""
        if self._signing is None:
            raise RuntimeError("signing keys are not loaded yet")
        return self._signing

    async def load(self, *, now: datetime | None = None) -> None:
        """Load the signing key, generating and storing one on the very first start."""
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(
                session, now=now or datetime.now(UTC)
            )
            if not any(record.active for record in records):
                key = SigningKey.generate()
                await repository.add_signing_key(
                    session,
                    SigningKeyRecord(
                        kid=key.kid,
                        private_pem=key.to_pem().decode(),
                        created_at=datetime.now(UTC),
                        active=True,
                    ),
                )
                logger.info("signing_key_generated", kid=key.kid)
        # Read again after commit: replicas racing on a first start see every stored key.
        now = now or datetime.now(UTC)
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=now)
        signing = _signing_record(records, now)
        if self._signing is None or self._signing.kid != signing.kid:
            self._signing = SigningKey.from_pem(signing.private_pem.encode(), signing.kid)
            self._jwks = None

    async def keep_current(self) -> None:
        """Reread which key signs every minute, so a rotation reaches every replica (run as a
        task for the app's life)."""
        while True:
            await asyncio.sleep(KEY_RELOAD_SECONDS)
            try:
                await self.load()
            except Exception as error:  # the database may be away a while: sign on meanwhile
                logger.warning("signing_key_reload_failed", error=type(error).__name__)

    async def rotate(self, *, now: datetime | None = None) -> RotatedKeys:
        """Store a new key that signs once published long enough (PUBLISH_AHEAD), and retire
        the others when every token they may still sign has expired."""
        now = now or datetime.now(UTC)
        key = SigningKey.generate()
        retire_at = now + ROTATED_KEY_GRACE
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=now)
            old = [record.kid for record in records]
            await repository.retire_signing_keys(session, old, at=retire_at)
            await repository.add_signing_key(
                session,
                SigningKeyRecord(
                    kid=key.kid, private_pem=key.to_pem().decode(), created_at=now, active=True
                ),
            )
        logger.info("signing_key_rotated", kid=key.kid, retiring=old)
        return RotatedKeys(
            kid=key.kid,
            signs_from=now + PUBLISH_AHEAD,
            verifying_until=dict.fromkeys(old, retire_at),
        )

    async def jwks(self) -> dict[str, Any]:
        """Every published (not retired) public key, as a JWKS document."""
        if self._jwks and time.monotonic() - self._jwks_loaded_at < _JWKS_CACHE_SECONDS:
            return self._jwks
        async with self._database.transaction() as session:
            records = await repository.list_published_signing_keys(session, now=datetime.now(UTC))
        self._jwks = {
            "keys": [
                SigningKey.from_pem(record.private_pem.encode(), record.kid).public_jwk()
                for record in records
            ]
        }
        self._jwks_loaded_at = time.monotonic()
        return self._jwks
