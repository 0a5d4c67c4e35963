"""Sessions ended before their access tokens expire: logout, a leaked refresh token, a removed
account. Every process keeps the list and the JWT check consults it, so a revoked session's
access tokens stop working in every service at once, not 15 minutes later.

Auth stores each revocation and publishes `auth.session_revoked` through its outbox; every
process `listen`s for it. Since `listen` has no history (a process that starts, or a child of
`kibitz up`, whose in-process bus hears nothing), each process also asks auth for the
revocations newer than the last it saw: at start, then every second without a broker and every
30 s with one (only a missed event waits that long). An entry is kept until the tokens of its
session have expired, so the list holds a quarter of an hour of logouts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import structlog

from kibitz.kit.events.bus import Event, EventBus, EventEnvelope

logger = structlog.get_logger("kibitz.session_revocations")

# Asked again this often (s): without a broker (all-in-one: children hear no events), with one.
POLL_SECONDS_WITHOUT_BROKER = 1.0
POLL_SECONDS_WITH_BROKER = 30.0
# Each ask overlaps the previous by this much (s): a revocation committed while auth answered.
_OVERLAP_SECONDS = 5.0


class SessionRevoked(Event):
    """A session ended before its access tokens expired (logout, refresh-token reuse, account
    removed); `expires_at` is when the last of them expires anyway."""

    name: ClassVar[str] = "auth.session_revoked"
    version: ClassVar[int] = 1

    session_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime


RevocationFetcher = Callable[[datetime | None], Awaitable[dict[str, Any]]]


class SessionRevocations:
    """The revoked sessions this process knows of, each until its tokens expire."""

    def __init__(self) -> None:
        # session id -> when its last access token expires (epoch s)
        self._until: dict[str, float] = {}

    def revoke(self, session_id: str, *, until: float) -> None:
        """Refuse the session's tokens until `until` (epoch s)."""
        now = time.time()
        if until <= now:
            return
        if len(self._until) > 1000:
            self._until = {sid: at for sid, at in self._until.items() if at > now}
        self._until[session_id] = max(until, self._until.get(session_id, 0.0))

    def is_revoked(self, session_id: str) -> bool:
        """Whether the session was revoked (and its tokens could still be live)."""
        until = self._until.get(session_id)
        return until is not None and until > time.time()

    async def on_session_revoked(self, envelope: EventEnvelope) -> None:
        """Bus handler for `auth.session_revoked`."""
        event = SessionRevoked.model_validate(envelope.payload)
        self.revoke(str(event.session_id), until=event.expires_at.timestamp())

    def add_all(self, answer: dict[str, Any]) -> None:
        """Add the revocations of auth's internal answer (`items` of session_id, expires_at)."""
        for item in answer.get("items", []):
            expires_at = datetime.fromisoformat(str(item["expires_at"]))
            self.revoke(str(item["session_id"]), until=expires_at.timestamp())

    async def keep_current(
        self, bus: EventBus, fetch: RevocationFetcher | None, *, poll_seconds: float
    ) -> None:
        """Hear revocations on the bus and ask auth for those missed (run as a task for the
        process's life)."""
        subscription = await bus.listen([SessionRevoked.name], handler=self.on_session_revoked)
        since: datetime | None = None
        try:
            while fetch is not None:
                try:
                    answer = await fetch(since)
                except Exception as error:  # auth may be starting, or away a while
                    logger.debug("session_revocations_unavailable", error=type(error).__name__)
                else:
                    self.add_all(answer)
                    now = datetime.fromisoformat(str(answer["now"])).astimezone(UTC)
                    since = now - timedelta(seconds=_OVERLAP_SECONDS)
                # Until the first answer (auth may be starting), ask every second.
                await asyncio.sleep(poll_seconds if since is not None else 1.0)
            await asyncio.Event().wait()  # nothing to ask: only the bus
        finally:
            await subscription.cancel()
