"""Service-to-service HTTP: one client type in both modes, only the addresses change.

Always real loopback/network HTTP (httpx's in-memory ASGI transport buffers whole bodies).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable

INTERNAL_TOKEN_HEADER = "x-kibitz-service-token"  # noqa: S105 (a header name)
# 10 s: a replica that refused a connection is skipped this long before it is tried again.
DEFAULT_COOLDOWN_SECONDS = 10.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class UpstreamPool:
    """Round-robin over replicas; a replica that failed is skipped for a cool-down."""

    def __init__(
        self, base_urls: Sequence[str], *, cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    ) -> None:
        if not base_urls:
            raise ValueError("an upstream pool needs at least one base URL")
        self.base_urls = [url.rstrip("/") for url in base_urls]
        self.cooldown_seconds = cooldown_seconds
        self._cycle = itertools.cycle(range(len(self.base_urls)))
        self._down_until: dict[str, float] = {}

    def candidates(self) -> list[str]:
        """Replicas to try, in order: the next healthy ones first, cooling-down ones last."""
        start = next(self._cycle)
        ordered = self.base_urls[start:] + self.base_urls[:start]
        now = time.monotonic()
        healthy = [url for url in ordered if self._down_until.get(url, 0.0) <= now]
        cooling = [url for url in ordered if url not in healthy]
        return healthy + cooling

    def mark_failed(self, base_url: str) -> None:
        """Skip this replica for the cool-down."""
        self._down_until[base_url] = time.monotonic() + self.cooldown_seconds

    def mark_ok(self, base_url: str) -> None:
        """This replica answered."""
        self._down_until.pop(base_url, None)


def new_http_client(
    *, timeout: httpx.Timeout | None = None, max_connections: int = 200
) -> httpx.AsyncClient:
    """An httpx client tuned for many concurrent calls to a few hosts."""
    return httpx.AsyncClient(
        timeout=timeout or httpx.Timeout(connect=2.0, read=30.0, write=10.0, pool=5.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=100),
        trust_env=False,
    )


class ServiceClient:
    """Calls one kibitz service over HTTP, across its replicas, with the service credential."""

    def __init__(
        self,
        service: str,
        base_urls: Sequence[str],
        *,
        internal_token: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.service = service
        self.pool = UpstreamPool(base_urls)
        self._internal_token = internal_token
        self._http = http or new_http_client()

    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if self._internal_token:
            merged[INTERNAL_TOKEN_HEADER] = self._internal_token
        return merged

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send a request; retried on another replica only when it could not connect."""
        last_error: Exception | None = None
        for base_url in self.pool.candidates()[:2]:
            try:
                response = await self._http.request(
                    method,
                    base_url + path,
                    json=json,
                    params=params,
                    headers=self._headers(headers),
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.ConnectError as exc:
                self.pool.mark_failed(base_url)
                last_error = exc
                continue
            except httpx.TimeoutException as exc:
                raise GatewayTimeout(f"The {self.service} service did not answer in time.") from exc
            self.pool.mark_ok(base_url)
            return response
        raise ServiceUnavailable(f"The {self.service} service is unavailable.") from last_error

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the response with its body still unread (streaming)."""
        last_error: Exception | None = None
        for base_url in self.pool.candidates()[:2]:
            request = self._http.build_request(
                method, base_url + path, json=json, headers=self._headers(headers)
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.ConnectError as exc:
                self.pool.mark_failed(base_url)
                last_error = exc
                continue
            except httpx.TimeoutException as exc:
                raise GatewayTimeout(f"The {self.service} service did not answer in time.") from exc
            self.pool.mark_ok(base_url)
            try:
                yield response
            finally:
                await response.aclose()
            return
        raise ServiceUnavailable(f"The {self.service} service is unavailable.") from last_error

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()
