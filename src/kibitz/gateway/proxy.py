"""The reverse proxy: one shared keep-alive client, bodies streamed both ways, no buffering."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kibitz.kit.errors import BadGateway, GatewayTimeout, ServiceUnavailable
from kibitz.kit.http import FORWARDED_BY_HEADER
from kibitz.kit.http.event_stream import until_disconnect
from kibitz.kit.http.replicas import (
    IDEMPOTENT_METHODS,
    NoReplicaReachable,
    UpstreamPool,
    first_reachable,
)
from kibitz.kit.http.transport import (
    UpstreamAnswer,
    UpstreamClient,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from kibitz.kit.observability import OPEN_STREAMS
from kibitz.kit.tracing import TRACE_HEADERS, ClientSpan, client_span

logger = structlog.get_logger("kibitz.gateway.proxy")

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Headers the gateway itself sets towards the upstream (a client's copies are dropped).
_SET_BY_GATEWAY = frozenset(
    {
        b"host",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        # The gateway streams the body at once; an upstream 100 Continue would only add a trip.
        b"expect",
        # Traces start at the gateway: a public caller's trace context is not continued (nor
        # passed on to services), and with tracing on the gateway sends its own.
        *TRACE_HEADERS,
    }
)
# Upstream headers the gateway's own server or middleware writes again.
_REWRITTEN_ON_ANSWER = frozenset({b"date", b"server", b"x-request-id"})
# Internal identity and the service credential: never accepted from, or shown to, the public.
INTERNAL_HEADER_PREFIX = b"x-kibitz-"
# Public hints under the same prefix: which kind of client is calling (the web app asks auth for
# its refresh token in an httpOnly cookie), the chat an OpenAI-compatible completion is kept in
# (its owner is checked by the chat service). They carry no identity, so they may pass.
PUBLIC_KIBITZ_HEADERS = frozenset({b"x-kibitz-client", b"x-kibitz-chat-id"})
# 30 s: the Retry-After of a 503 for a service this deployment does not run at all.
_ABSENT_SERVICE_RETRY_AFTER_SECONDS = 30


def _connection_listed(headers: Sequence[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names a `Connection` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            listed.update(token.strip().lower() for token in value.split(b","))
    return frozenset(listed)


def forwardable(
    headers: Sequence[tuple[bytes, bytes]], drop: frozenset[bytes]
) -> list[tuple[bytes, bytes]]:
    """`headers` without hop-by-hop, internal, and `drop`-listed ones."""
    listed = _connection_listed(headers)
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if (
            lowered in HOP_BY_HOP_HEADERS
            or lowered in drop
            or (lowered.startswith(INTERNAL_HEADER_PREFIX) and lowered not in PUBLIC_KIBITZ_HEADERS)
            or (listed and lowered in listed)
        ):
            continue
        kept.append((lowered, value))
    return kept


class Upstreams:
    """The replica pools of every service in this deployment."""

    def __init__(
        self, service_urls: Mapping[str, Sequence[str]], *, cooldown_seconds: float
    ) -> None:
        self.pools = {
            name: UpstreamPool(urls, cooldown_seconds=cooldown_seconds)
            for name, urls in service_urls.items()
            if urls
        }

    def pool(self, service: str) -> UpstreamPool:
        """The service's pool, or 503 when the deployment does not run it."""
        pool = self.pools.get(service)
        if pool is None:
            raise ServiceUnavailable(
                f"The {service} service is not part of this deployment.",
                retry_after=_ABSENT_SERVICE_RETRY_AFTER_SECONDS,
            )
        return pool


class Proxy:
    """Forwards one public request to a replica of its service and streams the answer back."""

    def __init__(
        self,
        upstreams: Upstreams,
        client: UpstreamClient,
        *,
        trust_forwarded_for: bool,
        forwarded_by: str = "",
    ) -> None:
        self.upstreams = upstreams
        self.client = client
        self._trust_forwarded_for = trust_forwarded_for
        # Sent to auth only (it throttles logins by client address): its word that this
        # request's X-Forwarded-For was set by the gateway (see kit `forwarding_credential`).
        self._forwarded_by = (
            [(FORWARDED_BY_HEADER.encode(), forwarded_by.encode())] if forwarded_by else []
        )

    def upstream_headers(self, scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
        """The client's headers, cleaned, plus X-Request-ID and X-Forwarded-*."""
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        headers = forwardable(raw, _SET_BY_GATEWAY)
        client_ip = client_ip_of(scope, trust_forwarded_for=self._trust_forwarded_for)
        forwarded_for = client_ip.encode()
        if self._trust_forwarded_for:
            earlier = b", ".join(value for name, value in raw if name == b"x-forwarded-for")
            if earlier:
                forwarded_for = earlier
        headers.append((b"x-request-id", request_id.encode()))
        headers.append((b"x-forwarded-for", forwarded_for))
        proto = scope.get("scheme", "http").encode()
        if self._trust_forwarded_for:
            # Behind a TLS-terminating load balancer, its word on the scheme is the true one.
            proto = next((value for name, value in raw if name == b"x-forwarded-proto"), proto)
        headers.append((b"x-forwarded-proto", proto))
        host = next((value for name, value in raw if name == b"host"), None)
        if host is not None:
            headers.append((b"x-forwarded-host", host))
        return headers

    async def forward(
        self,
        request: Request,
        service: str,
        *,
        request_id: str,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> Response:
        """Send the request to one replica (a second on connection failure) and stream back."""
        scope = request.scope
        pool = self.upstreams.pool(service)
        method: str = scope["method"]
        headers = self.upstream_headers(scope, request_id)
        if service == "auth":
            headers += self._forwarded_by
        client_headers: list[tuple[bytes, bytes]] = scope["headers"]
        chunked = any(name == b"transfer-encoding" for name, _ in client_headers)
        length = next((value for name, value in client_headers if name == b"content-length"), None)
        if chunked:
            # The upstream hop is chunked again by the upstream client.
            headers = [(name, value) for name, value in headers if name != b"content-length"]
        has_body = chunked or (length is not None and length.strip() != b"0")
        body: AsyncIterator[bytes] | None = request.stream() if has_body else None
        target = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        if query:
            target = target + b"?" + query
        span = client_span(method, scope["path"], peer=service)
        if span is not None:
            headers += span.headers
        try:
            answer = await self._send(pool, service, method, target, headers, body, chunked)
        except BaseException as error:
            if span is not None:
                span.end(error=error)
            raise
        return UpstreamResponse(answer, extra_headers=extra_headers, service=service, span=span)

    async def _send(
        self,
        pool: UpstreamPool,
        service: str,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: AsyncIterator[bytes] | None,
        chunked: bool,
    ) -> UpstreamAnswer:
        # Nothing was sent on a connection failure, so any request may go to another replica;
        # a reset before the answer is retried only when repeating it is safe.
        try:
            return await first_reachable(
                pool,
                lambda base_url: self.client.send(
                    base_url, method, target, headers, body, chunked_body=chunked
                ),
                resend_after_reset=method in IDEMPOTENT_METHODS and body is None,
            )
        except NoReplicaReachable:
            logger.warning("no_replica_reachable", service=service)
            raise ServiceUnavailable(f"No replica of the {service} service is reachable.") from None
        except UpstreamTimeoutError as exc:
            raise GatewayTimeout(f"The {service} service did not answer in time.") from exc
        except UpstreamProtocolError as exc:
            raise BadGateway(f"The {service} service answered badly.") from exc


def client_ip_of(scope: Scope, *, trust_forwarded_for: bool) -> str:
    """The client's IP: the socket peer, or the last X-Forwarded-For hop behind a trusted proxy."""
    if trust_forwarded_for:
        for name, value in reversed(scope["headers"]):
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                if last:
                    return str(last)
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class UpstreamResponse(Response):
    """An upstream answer relayed chunk by chunk as it arrives (nothing decoded or buffered)."""

    def __init__(
        self,
        answer: UpstreamAnswer,
        *,
        extra_headers: Sequence[tuple[bytes, bytes]],
        service: str,
        span: ClientSpan | None = None,
    ) -> None:
        self.status_code = answer.status
        self.background = None
        self._answer = answer
        self._service = service
        # The hop's client span ends once the answer is relayed whole (or abandoned).
        self._span = span
        self.raw_headers = forwardable(answer.headers, _REWRITTEN_ON_ANSWER)
        self.raw_headers.extend(extra_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if self._answer.has_length:
                await self._relay(send)
                return
            # Without a length the answer may be endless (SSE): stop when the client leaves.
            OPEN_STREAMS.labels("gateway").inc()
            try:
                await until_disconnect(self._relay(send), receive)
            finally:
                OPEN_STREAMS.labels("gateway").dec()
        finally:
            self._answer.close()
            if self._span is not None:
                self._span.end(status=self.status_code)

    async def _relay(self, send: Send) -> None:
        try:
            async for chunk in self._answer.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            # The head is gone already: the only honest signal left is an unfinished body, so the
            # server closes the connection instead of ending the response.
            logger.warning("upstream_broke_mid_answer", service=self._service, error=str(exc))
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
