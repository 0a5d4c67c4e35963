"""Service-to-service HTTP: one client type in both modes, only the addresses change.

Always real loopback/network HTTP (httpx's in-memory ASGI transport buffers whole bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json as json_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx

from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable
from kibitz.kit.upstream_client import (
    UpstreamAnswer,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
)

Answer = TypeVar("Answer")

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


# Seconds: to connect to another service, between two reads of its answer, to send a body.
_CONNECT_SECONDS, _READ_SECONDS, _WRITE_SECONDS = 2.0, 30.0, 10.0
# 1 MiB: the largest server-sent event read from another service.
_MAX_EVENT_BYTES = 1024 * 1024


class ServiceCallError(Exception):
    """A call to another service broke after it connected (or answered an error status when
    `raise_for_status` was asked)."""


@dataclass
class ServiceResponse:
    """A whole answer from another service."""

    status_code: int
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json_module.loads(self.content)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", errors="replace")

    def raise_for_status(self) -> None:
        """ServiceCallError unless the status is 2xx."""
        if not 200 <= self.status_code < 300:
            raise ServiceCallError(f"answered {self.status_code}")


class StreamedResponse:
    """An answer from another service whose body is read as it arrives."""

    def __init__(self, answer: UpstreamAnswer) -> None:
        self._chunks = answer.chunks()
        self.status_code = answer.status

    async def aread(self) -> bytes:
        """The rest of the body."""
        try:
            return b"".join([piece async for piece in self._chunks])
        except UpstreamError as exc:
            raise ServiceCallError(str(exc)) from exc

    async def read_to_end(self, *, seconds: float = 0.25) -> None:
        """Read what is left of a body whose content is all in (usually its last chunk): a
        response read to its end gives its connection back for reuse, instead of closing it."""
        with contextlib.suppress(ServiceCallError, TimeoutError):
            async with asyncio.timeout(seconds):
                await self.aread()

    async def aiter_events(self) -> AsyncIterator[tuple[str, str]]:
        """A `text/event-stream` body as (event, data) pairs as they arrive, comments skipped.

        Our services end each event with a blank line, LF-framed; a streamed reply is mostly
        one small event per chunk."""
        pending = b""
        try:
            async for piece in self._chunks:
                pending += piece
                *blocks, pending = pending.split(b"\n\n")
                for block in blocks:
                    parsed = _event_of(block)
                    if parsed is not None:
                        yield parsed
                if len(pending) > _MAX_EVENT_BYTES:
                    raise ServiceCallError("an event is too large")
        except UpstreamError as exc:
            raise ServiceCallError(str(exc)) from exc


def _event_of(block: bytes) -> tuple[str, str] | None:
    """(event, data) of one server-sent event; None when it carries no data (a comment)."""
    event, data = "message", []
    for line in block.decode("utf-8", errors="replace").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.rstrip("\r").partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return (event, "\n".join(data)) if data else None


class ServiceClient:
    """Calls one kibitz service over HTTP, across its replicas, with the service credential.

    Whole answers through aiohttp, not httpx: measured here, an internal call cost ~0.8 ms of
    httpx CPU against ~0.1 ms of aiohttp's (C-parsed HTTP), and chat makes several per message.
    Streamed answers (every token of a reply) through the kit's lean client (`stream`).
    """

    def __init__(
        self,
        service: str,
        base_urls: Sequence[str],
        *,
        internal_token: str | None = None,
        max_connections: int = 200,
    ) -> None:
        self.service = service
        self.pool = UpstreamPool(base_urls)
        self._internal_token = internal_token
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._streams = UpstreamClient(
            connect_timeout=_CONNECT_SECONDS,
            read_timeout=_READ_SECONDS,
            write_timeout=_WRITE_SECONDS,
            max_idle_per_address=max_connections,
        )

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, use_dns_cache=True)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False
            )
        return self._session

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
    ) -> ServiceResponse:
        """Send a request and read the answer; retried on another replica only when it could
        not connect."""
        async with self._send(method, path, json, params, headers, timeout) as response:
            try:
                content = await response.read()
            except aiohttp.ClientError as exc:
                raise ServiceCallError(str(exc) or type(exc).__name__) from exc
            except TimeoutError as exc:
                raise self._timed_out() from exc
            return ServiceResponse(response.status, response.headers, content)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        sent: asyncio.Event | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        """Send a request and yield the answer with its body still unread (streaming).

        `sent` is set once the request is on the connection, well before the answer: a caller
        can hold other work back until its request is on its way. Sent through the kit's lean
        client (see `upstream_client.py`): every chat reply starts with one of these."""
        body = json_module.dumps(json).encode() if json is not None else None
        head = [
            (name.lower().encode(), value.encode())
            for name, value in self._headers(headers).items()
        ]
        if body is not None:
            head.append((b"content-type", b"application/json"))
        try:
            answer = await self._first_reachable(
                lambda base_url: self._streams.send(
                    base_url, method, path.encode(), head, body, sent=sent
                ),
                unreachable=UpstreamConnectError,
            )
        except UpstreamTimeoutError as exc:
            raise self._timed_out() from exc
        except UpstreamError as exc:
            raise ServiceCallError(str(exc)) from exc
        try:
            yield StreamedResponse(answer)
        finally:
            answer.close()

    @asynccontextmanager
    async def _send(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        try:
            response = await self._first_reachable(
                lambda base_url: self._http().request(
                    method,
                    base_url + path,
                    json=json,
                    params=params,
                    headers=self._headers(headers),
                    timeout=_timeout(timeout),
                    allow_redirects=False,
                ),
                unreachable=aiohttp.ClientConnectorError,
            )
        except TimeoutError as exc:
            raise self._timed_out() from exc
        except aiohttp.ClientError as exc:
            raise ServiceCallError(str(exc) or type(exc).__name__) from exc
        try:
            yield response
        finally:
            response.release()

    async def _first_reachable(
        self, attempt: Callable[[str], Awaitable[Answer]], *, unreachable: type[Exception]
    ) -> Answer:
        """The attempt's answer from the first replica it can reach (two are tried: a request
        that could not connect was not sent, so it may go elsewhere); other errors propagate."""
        last_error: Exception | None = None
        for base_url in self.pool.candidates()[:2]:
            try:
                answer = await attempt(base_url)
            except unreachable as exc:  # refused, unreachable: try another
                self.pool.mark_failed(base_url)
                last_error = exc
                continue
            self.pool.mark_ok(base_url)
            return answer
        raise ServiceUnavailable(f"The {self.service} service is unavailable.") from last_error

    def _timed_out(self) -> GatewayTimeout:
        return GatewayTimeout(f"The {self.service} service did not answer in time.")

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._streams.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _timeout(read_seconds: float | None) -> aiohttp.ClientTimeout:
    """2 s to connect (5 s with the wait for a pooled connection); `read_seconds` (default
    30 s) between two reads of the answer."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=5.0,
        sock_connect=_CONNECT_SECONDS,
        sock_read=read_seconds or _READ_SECONDS,
    )
