"""What the runtime hands every service: shared settings, addresses of the others, the bus.

A service's `module.py` builds its app from a `Platform`; the runtime decides whether the
addresses point into the same process (all-in-one) or at other machines (distributed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.events import EventBus, InProcessBus
from kibitz.kit.http import ServiceClient
from kibitz.kit.jwt import TokenVerifier
from kibitz.kit.session_revocations import (
    POLL_SECONDS_WITH_BROKER,
    POLL_SECONDS_WITHOUT_BROKER,
    SessionRevocations,
)
from kibitz.kit.settings import PlatformSettings


@dataclass
class Platform:
    """Shared settings, service addresses and the event bus, as wired by the runtime."""

    settings: PlatformSettings = field(default_factory=PlatformSettings)
    service_urls: dict[str, list[str]] = field(default_factory=dict)
    bus: EventBus = field(default_factory=InProcessBus)
    internal_token: str = ""
    # The sessions revoked before their tokens expire, shared by every app of this process.
    revocations: SessionRevocations = field(default_factory=SessionRevocations)
    _clients: list[ServiceClient] = field(default_factory=list, repr=False)

    def has_service(self, name: str) -> bool:
        """Whether this deployment runs the named service."""
        return bool(self.service_urls.get(name))

    def peer_check(self, name: str) -> Callable[[], Awaitable[None]]:
        """A readiness check that the named service answers its liveness probe."""
        client: ServiceClient | None = None

        async def answers() -> None:
            nonlocal client
            client = client or self.client(name)
            response = await client.request("GET", "/healthz")
            response.raise_for_status()

        return answers

    def client(self, name: str) -> ServiceClient:
        """A client for the named service (503 problem when the deployment lacks it)."""
        urls = self.service_urls.get(name)
        if not urls:
            raise ServiceUnavailable(f"The {name} service is not part of this deployment.")
        client = ServiceClient(name, urls, internal_token=self.internal_token or None)
        self._clients.append(client)
        return client

    def client_or_absent(self, name: str) -> ServiceClient:
        """A client for the named service; where the deployment lacks it (a partial test stack),
        one whose every call answers 503, so the caller can start and say so when asked."""
        if self.has_service(name):
            return self.client(name)
        client = ServiceClient(name, [], internal_token=self.internal_token or None)
        self._clients.append(client)
        return client

    async def close_clients(self) -> None:
        """Close every client handed out (the runtime calls this at shutdown)."""
        for client in self._clients:
            await client.aclose()
        self._clients.clear()

    def token_verifier(self) -> TokenVerifier:
        """A verifier that fetches the auth service's JWKS over HTTP."""
        auth: ServiceClient | None = None

        async def fetch_jwks() -> dict[str, Any]:
            nonlocal auth
            auth = auth or self.client("auth")
            response = await auth.request("GET", "/auth/jwks")
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

        return TokenVerifier(fetch_jwks, self.revocations)

    async def keep_revocations_current(self) -> None:
        """Keep `revocations` current from the bus and from auth (a task for the process's
        life; see `kit/session_revocations.py`)."""
        auth: ServiceClient | None = None

        async def fetch(since: datetime | None) -> dict[str, Any]:
            nonlocal auth
            auth = auth or self.client("auth")
            query = {"since": since.isoformat()} if since is not None else None
            response = await auth.request("GET", "/auth/internal/session-revocations", params=query)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        broker = self.settings.has_broker
        await self.revocations.keep_current(
            self.bus,
            fetch if self.has_service("auth") else None,
            poll_seconds=POLL_SECONDS_WITH_BROKER if broker else POLL_SECONDS_WITHOUT_BROKER,
        )


@dataclass(frozen=True)
class Module:
    """One runnable target: a name, what it needs running first, and how to build its app."""

    name: str
    create_app: Callable[[Platform], FastAPI]
    depends_on: tuple[str, ...] = ()
    # Services it cannot work without, declared once: run apart, each needs its
    # `KIBITZ_<NAME>_URL` (a start-up error names the missing one), and its `/readyz` fails
    # while one of them does not answer.
    requires: tuple[str, ...] = ()
    # Settings every replica must share, by environment variable: run apart (not as a child of
    # `kibitz up`), the module does not start without them, naming the first one missing. A key
    # one process generated for itself, another replica could not use.
    shared_settings: tuple[str, ...] = ()
    # Applies the module's migrations (None when it has no database).
    migrate: Callable[[Platform], Awaitable[None]] | None = None
    # Publishes events: all-in-one runs it in the process whose memory holds the bus. One that
    # only consumes may run in a process of its own; the parent relays its events to it.
    publishes_events: bool = True
