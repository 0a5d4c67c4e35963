"""Gateway test harness: small real upstreams on loopback and a real gateway in front of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI

from kibitz.gateway.module import create_app
from kibitz.kit.events import InProcessBus
from kibitz.kit.jwt import SigningKey
from kibitz.kit.platform import Platform
from kibitz.kit.settings import PlatformSettings
from tests.fixtures.serving import serving
from tests.fixtures.stack import environment
from tests.gateway.upstream import create_upstream_app


@dataclass
class Harness:
    """A gateway, its upstreams, the key that signs tokens, and a client."""

    url: str
    app: FastAPI
    platform: Platform
    key: SigningKey
    upstreams: dict[str, FastAPI]
    http: httpx.AsyncClient
    tenant_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def token(
        self,
        *,
        tenant_id: uuid.UUID | None = None,
        key: SigningKey | None = None,
        user_id: uuid.UUID | None = None,
    ) -> str:
        """A valid access token (for this harness's tenant and a new user unless told otherwise)."""
        return (key or self.key).issue_access_token(
            user_id=user_id or uuid.uuid4(), tenant_id=tenant_id or self.tenant_id, role="owner"
        )

    def auth(self, **kwargs: object) -> dict[str, str]:
        """An Authorization header with a fresh valid token."""
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}  # type: ignore[arg-type]


@asynccontextmanager
async def start_gateway(
    *,
    service_urls: dict[str, list[str]],
    env: dict[str, str] | None = None,
    redis_url: str | None = None,
) -> AsyncIterator[tuple[str, FastAPI, Platform]]:
    """A gateway app on loopback in front of the given upstream URLs."""
    with environment(env or {}):
        platform = Platform(
            settings=PlatformSettings(redis_url=redis_url),
            service_urls=service_urls,
            bus=InProcessBus(),
            internal_token="test-internal-token",
        )
        app = create_app(platform)
    async with serving(app) as url:
        yield url, app, platform
    await platform.bus.close()


@asynccontextmanager
async def start_harness(
    *,
    services: tuple[str, ...] = ("auth", "users", "chat"),
    env: dict[str, str] | None = None,
    redis_url: str | None = None,
) -> AsyncIterator[Harness]:
    """Upstreams for `services` (auth also serves the JWKS) and a gateway in front."""
    key = SigningKey.generate()
    async with AsyncExitStack() as stack:
        upstreams = {
            name: create_upstream_app(name, signing_key=key if name == "auth" else None)
            for name in services
        }
        urls = {
            name: [await stack.enter_async_context(serving(app))] for name, app in upstreams.items()
        }
        url, app, platform = await stack.enter_async_context(
            start_gateway(service_urls=urls, env=env, redis_url=redis_url)
        )
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, timeout=10, trust_env=False)
        )
        yield Harness(url=url, app=app, platform=platform, key=key, upstreams=upstreams, http=http)


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    """auth, users and chat upstreams behind a gateway, with generous limits (one per module)."""
    env = {
        "KIBITZ_WEB_DIST": str(tmp_path_factory.mktemp("web") / "no-web-build"),
        "KIBITZ_GATEWAY_DEFAULT_REQUESTS_PER_MINUTE": "10000",
        "KIBITZ_GATEWAY_READ_REQUESTS_PER_MINUTE": "10000",
        "KIBITZ_GATEWAY_AUTH_IP_REQUESTS_PER_MINUTE": "10000",
    }
    async with start_harness(env=env) as running:
        yield running
