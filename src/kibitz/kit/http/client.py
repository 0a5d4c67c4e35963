"""Service-to-service HTTP: one client type in both modes, only the addresses change.

Always real loopback/network HTTP, through the kit's transport (`transport.py`), so a streamed
answer streams in both modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json as json_module
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import Headers

from kibitz.kit.errors import GatewayTimeout, ServiceUnavailable
from kibitz.kit.http.replicas import (
    IDEMPOTENT_METHODS,
    NoReplicaReachable,
    UpstreamPool,
    first_reachable,
)
from kibitz.kit.http.sse import SseParser, SseTooLargeError
from kibitz.kit.http.transport import (
    UpstreamAnswer,
    UpstreamClient,
    UpstreamError,
    UpstreamTimeoutError,
    WrittenRequest,
)
from kibitz.kit.tracing import ClientSpan, client_span

INTERNAL_TOKEN_HEADER = "x-kibitz-service-token"  # noqa: S105 (a header name)
# The gateway's word that it set X-Forwarded-For: a services believes the header from a caller
# presenting this, or from an address it was told to trust, never from any other (a local
# process could otherwise pick a new address for each guess at a password).
FORWARDED_BY_HEADER = "x-kibitz-forwarded-by"
# Whom a service acts for on a user's route (believed only beside the service credential): work
# done for a user after their request ended (a reply job) needs no copy of their access token.
ACTING_USER_HEADER = "x-kibitz-acting-user"
ACTING_TENANT_HEADER = "x-kibitz-acting-tenant"


def acting_for(*, tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, str]:
    """Headers naming the user a service call acts for (with the client's service credential;
    the receiving route scopes everything by them, as it would by the user's token)."""
    return {ACTING_TENANT_HEADER: str(tenant_id), ACTING_USER_HEADER: str(user_id)}


def forwarding_credential(internal_token: str) -> str:
    """What the gateway presents in `FORWARDED_BY_HEADER`: derived from the internal token,
    so it proves the gateway's part without being the service credential itself."""
    return hmac.new(internal_token.encode(), b"kibitz-forwarded-for", hashlib.sha256).hexdigest()


# Seconds: to connect to another service, between two reads of its answer, to send a body.
_CONNECT_SECONDS, _READ_SECONDS, _WRITE_SECONDS = 2.0, 30.0, 10.0
_JSON_CONTENT = (b"content-type", b"application/json")


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
        self.headers: Mapping[str, str] = Headers(raw=answer.headers)

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
        """A `text/event-stream` body as (event, data) pairs as they arrive (`message` when an
        event names none), through the kit's one SSE parser."""
        parser = SseParser()
        try:
            async for piece in self._chunks:
                for event, data in parser.feed(piece):
                    yield event or "message", data
            for event, data in parser.finish():
                yield event or "message", data
        except UpstreamError as exc:
            raise ServiceCallError(str(exc)) from exc
        except SseTooLargeError as exc:
            raise ServiceCallError(str(exc)) from exc


class ServiceClient:
    """Calls one kibitz service over HTTP, across its replicas, with the service credential.

    Whole and streamed answers go through the same transport and the same fail-over loop; a
    request that could not connect goes to another replica, and so does an idempotent one whose
    connection broke before it was answered.
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
        self._transport = UpstreamClient(
            connect_timeout=_CONNECT_SECONDS,
            read_timeout=_READ_SECONDS,
            write_timeout=_WRITE_SECONDS,
            max_idle_per_address=max_connections,
        )
        self._credential = (
            [(INTERNAL_TOKEN_HEADER.encode(), internal_token.encode())] if internal_token else []
        )

    def _head(
        self, headers: Mapping[str, str] | None, *, json_body: bool
    ) -> list[tuple[bytes, bytes]]:
        head = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
        head += self._credential
        if json_body:
            head.append(_JSON_CONTENT)
        return head

    async def _answer(
        self,
        method: str,
        target: str,
        head: list[tuple[bytes, bytes]],
        body: bytes | None,
        *,
        written: WrittenRequest | None = None,
        read_timeout: float | None = None,
    ) -> UpstreamAnswer:
        try:
            if written is not None:
                return await written.answer()
            return await first_reachable(
                self.pool,
                lambda base_url: self._transport.send(
                    base_url, method, target.encode(), head, body, read_timeout=read_timeout
                ),
                resend_after_reset=method in IDEMPOTENT_METHODS,
            )
        except NoReplicaReachable as exc:
            raise ServiceUnavailable(f"The {self.service} service is unavailable.") from exc
        except UpstreamTimeoutError as exc:
            raise self._timed_out() from exc
        except UpstreamError as exc:
            raise ServiceCallError(str(exc)) from exc

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
        """Send a request and read the answer; `timeout` (default 30 s) bounds each wait for
        the answer."""
        body = json_module.dumps(json).encode() if json is not None else None
        target = f"{path}?{urlencode(params, doseq=True)}" if params else path
        head = self._head(headers, json_body=body is not None)
        span = self._span(method, path, head)
        try:
            answer = await self._answer(method, target, head, body, read_timeout=timeout)
            try:
                content = await answer.read()
            except UpstreamTimeoutError as exc:
                raise self._timed_out() from exc
            except UpstreamError as exc:
                raise ServiceCallError(str(exc)) from exc
            finally:
                answer.close()
        except BaseException as error:
            if span is not None:
                span.end(error=error)
            raise
        if span is not None:
            span.end(status=answer.status)
        return ServiceResponse(answer.status, Headers(raw=answer.headers), content)

    def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> OpenedStream:
        """Send a request; `async with` it for the answer with its body still unread.

        The request is written during this call when a kept-alive connection to the next
        replica is idle (otherwise on entering): a caller can go on with other work while the
        other service starts on it, then enter (or `abandon` it)."""
        body = json_module.dumps(json).encode() if json is not None else None
        head = self._head(headers, json_body=body is not None)
        span = self._span(method, path, head)
        written = None
        if method not in IDEMPOTENT_METHODS and (candidates := self.pool.candidates()):
            # One replica, no fail-over to another once written: a request that is not safe to
            # repeat goes to one replica anyway (`first_reachable`).
            written = self._transport.send_now(candidates[0], method, path.encode(), head, body)
        return OpenedStream(self, (method, path, head, body), span, written)

    def _span(self, method: str, path: str, head: list[tuple[bytes, bytes]]) -> ClientSpan | None:
        """A client span for the call (None when tracing is off), its context added to `head`."""
        span = client_span(method, path, peer=self.service)
        if span is not None:
            head += span.headers
        return span

    def _timed_out(self) -> GatewayTimeout:
        return GatewayTimeout(f"The {self.service} service did not answer in time.")

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._transport.aclose()


class OpenedStream:
    """A streamed call (`ServiceClient.stream`): entering it reads the answer's head."""

    def __init__(
        self,
        client: ServiceClient,
        request: tuple[str, str, list[tuple[bytes, bytes]], bytes | None],
        span: ClientSpan | None,
        written: WrittenRequest | None,
    ) -> None:
        self._client = client
        self._request = request
        self._span = span
        self._written = written
        self._entered = False
        self._answer: UpstreamAnswer | None = None

    async def __aenter__(self) -> StreamedResponse:
        method, path, head, body = self._request
        written, self._written = self._written, None
        self._entered = True
        try:
            self._answer = await self._client._answer(method, path, head, body, written=written)
        except BaseException as error:
            if self._span is not None:
                self._span.end(error=error)
            raise
        return StreamedResponse(self._answer)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        if self._answer is not None:
            self._answer.close()
        if self._span is not None:
            if error is not None:
                self._span.end(error=error)
            elif self._answer is not None:
                self._span.end(status=self._answer.status)

    def abandon(self) -> None:
        """Not entered after all (nothing happens once it was): a request already written
        loses its connection, so the other service sees the call end."""
        if self._entered:
            return
        self._entered = True
        written, self._written = self._written, None
        if written is not None:
            written.abandon()
        if self._span is not None:
            self._span.end(error=asyncio.CancelledError())
