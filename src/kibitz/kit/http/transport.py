"""The kit's one HTTP/1.1 client transport: keep-alive connections per address, answers parsed
by llhttp (`httptools`, the parser uvicorn serves with), bodies relayed as they arrive.

Every hop between kibitz processes goes through it: the gateway's proxy, `ServiceClient`'s
whole and streamed calls, the API reference's fetches, the health poll of child processes.
Framing is the parser's job, never ours: llhttp refuses what a smuggling or desync attack
needs (obs-fold, duplicate or conflicting lengths, bad chunk sizes, bare LF line ends).

Why this and not httpx or aiohttp: measured on the target machine, one proxied request through
httpx/httpcore cost ~0.85 ms of CPU (anyio streams, h11's state machine, pool bookkeeping), more
than the 1 ms the gateway may add. Against aiohttp (`bench/http_transport.py`, client CPU per
request, 3 rounds): a small JSON answer 68-103 µs here against 149-154 µs, 20 streamed events
145-187 against 198-256 µs. Against the hand parser it replaced (same microbenchmark, 3
rounds): JSON 96-111 against 105-118 µs, 20 events 171-199 against 221-226 µs; the chat and
gateway benchmarks' A/B is in the README.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

# A head larger than this is refused (uvicorn and most servers cap theirs lower).
MAX_HEAD_BYTES = 64 * 1024
# Body bytes buffered unread before the connection stops reading (the sender then waits).
_PAUSE_READING_BYTES = 256 * 1024
# 0.1 s: after a stalled loop, what a connect the kernel made needs to finish (see `_connect`).
_CONNECT_GRACE_SECONDS = 0.1


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer properly."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made: nothing was sent, so any request may go elsewhere."""


class UpstreamTimeoutError(UpstreamError):
    """The upstream took longer than the timeout to connect, accept the body or answer."""


class UpstreamProtocolError(UpstreamError):
    """The connection broke or the upstream answered something that is not HTTP/1.1."""

    def __init__(self, message: str, *, closed_unanswered: bool = False) -> None:
        super().__init__(message)
        # The server closed the connection cleanly without a byte of answer: what a kept-alive
        # connection does when the server timed it out just as it was reused.
        self.closed_unanswered = closed_unanswered


class _Connection(asyncio.Protocol):
    """One TCP connection: feeds what arrives to llhttp and keeps the answer for its reader."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._begin(head_only=False, expecting=False)

    def _begin(self, *, head_only: bool, expecting: bool) -> None:
        """Ready for the answer to a request about to be sent."""
        self.expecting = expecting
        self.head_only = head_only
        self.received = False
        self.interim = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.chunked = False
        self.error: UpstreamError | None = None
        self._head_bytes = 0
        self._header_bytes = 0
        self._pieces: deque[bytes] = deque()
        self._buffered = 0

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but offer the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.expecting:
            # Bytes nobody asked for: the connection is out of step, never reuse it.
            self._fail(UpstreamProtocolError("bytes arrived outside an answer"))
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("unexpected protocol switch"))
            return
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, UpstreamProtocolError):
                self._fail(cause)  # raised by a callback of ours
            else:
                self._fail(UpstreamProtocolError(f"malformed answer: {exc}"))
            return
        if not self.head_done:
            # Every byte so far belongs to a head (or interim heads): cap them.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(UpstreamProtocolError("answer head too large"))
        elif self._buffered > _PAUSE_READING_BYTES and not self._reading_paused:
            self._reading_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.expecting and self.error is None and not self.complete:
            if not self.head_done:
                self.error = UpstreamProtocolError(
                    "connection closed before an answer", closed_unanswered=not self.received
                )
            elif self.length is None and not self.chunked:
                self.complete = True  # neither length nor chunks: the body ends at the close
            else:
                self.error = UpstreamProtocolError("connection closed before the body ended")
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    # --- llhttp callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer to one request: the connection is out of step.
            raise UpstreamProtocolError("more than one answer to a request")

    def on_header(self, name: bytes, value: bytes) -> None:
        # A head that arrived whole in one read is measured here, field by field.
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEAD_BYTES:
            raise UpstreamProtocolError("answer head too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 1xx interim answers (100 Continue, 103 Early Hints) precede the real one.
            self.interim = True
            self.headers = []
            self._header_bytes = 0
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive() and not self.head_only
        for name, value in self.headers:
            if name == b"content-length":
                self.length = int(value)  # llhttp has checked it is a number
            elif name == b"transfer-encoding":
                self.chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
        if self.head_only or status in (204, 304):
            self.length, self.chunked = 0, False
        self.head_done = True
        if self.head_only:
            self.complete = True  # llhttp would wait for a body a HEAD answer never has
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self._pieces.append(body)
        self._buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self._wake()

    # --- used by the client and the answer -----------------------------------------------

    def _fail(self, error: UpstreamError) -> None:
        self.error = error
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until more arrives, the answer ends or the connection breaks."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def drain(self) -> None:
        """Until the socket takes more (flow control of a streamed request body)."""
        if self._writing_paused and not self.closed:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained
        if self.closed:
            raise UpstreamProtocolError("connection closed while sending the body")

    def take(self) -> bytes | None:
        """The next unread piece of body as it arrived; None when nothing is waiting."""
        pieces = self._pieces
        if not pieces:
            return None
        data = pieces.popleft()
        self._buffered -= len(data)
        if (
            self._reading_paused
            and self._buffered <= _PAUSE_READING_BYTES // 2
            and self.transport is not None
            and not self.closed
        ):
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def usable(self, now: float, idle_seconds: float) -> bool:
        """Whether the connection may carry another request."""
        return (
            not self.closed
            and now - self.idle_since < idle_seconds
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        """Close the socket (an answer left unread makes the connection unusable)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamAnswer:
    """An answer whose head has been read; its body is read by iterating `chunks()`."""

    def __init__(
        self, client: UpstreamClient, connection: _Connection, read_timeout: float
    ) -> None:
        self.status = connection.status
        self.headers = connection.headers
        self._client = client
        self._connection: _Connection | None = connection
        self._read_timeout = read_timeout

    @property
    def has_length(self) -> bool:
        """Whether the answer says how long it is (otherwise it may be endless, like SSE)."""
        connection = self._connection
        return connection is None or connection.length is not None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as it arrives (chunked framing removed, nothing decoded)."""
        connection = self._connection
        if connection is None:
            return
        watch = _ReadWatch(connection, self._read_timeout)
        try:
            while True:
                piece = connection.take()
                if piece is not None:
                    yield piece
                    continue
                if connection.error is not None:
                    if watch.expired:
                        raise UpstreamTimeoutError("upstream stopped sending")
                    raise connection.error
                if connection.complete:
                    return
                watch.since = watch.loop.time()
                await connection.wait()
                watch.since = None
        finally:
            watch.stop()

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([piece async for piece in self.chunks()])

    def close(self) -> None:
        """Give the connection back for reuse when the answer was read whole, else close it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.complete and connection.keep_alive and connection.error is None:
            self._client.release(connection)
        else:
            connection.close()


class _ReadWatch:
    """The read timeout of a body: aborts the connection when one wait lasts `seconds`.

    One timer per `seconds`, not one per read: an `asyncio.timeout` costs ~9 µs hot (a timer
    made and cancelled each time), and reading a 20-event stream with one per chunk cost
    1.5-1.8 ms of CPU against 0.8-1.1 ms with this watch (client and server, measured here)."""

    def __init__(self, connection: _Connection, seconds: float) -> None:
        self.loop = asyncio.get_running_loop()
        self._connection = connection
        self._seconds = seconds
        self.since: float | None = None  # when the wait in progress began
        self.expired = False
        self._timer = self.loop.call_later(seconds, self._check)

    def _check(self) -> None:
        if self._connection.closed:
            return  # closed meanwhile: nothing left to watch
        now = self.loop.time()
        since = self.since
        if since is not None and now - since >= self._seconds:
            self.expired = True
            self._connection._fail(UpstreamTimeoutError("upstream stopped sending"))
            return
        due = (since if since is not None else now) + self._seconds
        self._timer = self.loop.call_at(due, self._check)

    def stop(self) -> None:
        """The body is over (or abandoned)."""
        self._timer.cancel()


class UpstreamClient:
    """Keep-alive connections per upstream address, one request at a time on each."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        # 4 s: below uvicorn's default 5 s keep-alive, so the server never closes an idle
        # connection just as it is reused.
        idle_seconds: float = 4.0,
        max_idle_per_address: int = 128,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.idle_seconds = idle_seconds
        self.max_idle_per_address = max_idle_per_address
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._addresses: dict[str, tuple[str, int, bytes]] = {}

    def _address(self, base_url: str) -> tuple[str, int, bytes]:
        known = self._addresses.get(base_url)
        if known is None:
            parts = urlsplit(base_url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"unsupported upstream URL: {base_url}")
            port = parts.port or 80
            known = (parts.hostname, port, parts.netloc.encode())
            self._addresses[base_url] = known
        return known

    def _checkout(self, address: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(address)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now, self.idle_seconds):
                return connection
            connection.close()
        return None

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose last answer was read whole, for the next request."""
        connection.expecting = False
        idle = self._idle.setdefault(connection.address, [])
        if len(idle) >= self.max_idle_per_address or connection.closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, address: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        connecting = asyncio.ensure_future(
            loop.create_connection(lambda: _Connection(address), address[0], address[1])
        )
        try:
            done, _ = await asyncio.wait({connecting}, timeout=self.connect_timeout)
            if not done:
                # After a stalled loop (a collection, a starved process) the timer comes due
                # with a connect the kernel made in time: the loop's delay is not the peer's,
                # so the connect gets a last moment (0.1 s) to finish.
                done, _ = await asyncio.wait({connecting}, timeout=_CONNECT_GRACE_SECONDS)
        except asyncio.CancelledError:  # the caller gave up: so does the connect
            connecting.cancel()
            raise
        if not done:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            raise UpstreamConnectError("connect timed out")
        try:
            _, connection = connecting.result()
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect: {exc.strerror or exc}") from exc
        return connection

    def _request_head(
        self,
        netloc: bytes,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        chunked_body: bool,
    ) -> bytes:
        lines = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", netloc, b"\r\n"]
        for name, value in headers:
            lines += [name, b": ", value, b"\r\n"]
        if chunked_body:
            lines.append(b"transfer-encoding: chunked\r\n")
        elif isinstance(body, bytes):
            lines.append(b"content-length: %d\r\n" % len(body))
        elif (
            body is None
            and method in ("POST", "PUT", "PATCH")
            and not any(name == b"content-length" for name, _ in headers)
        ):
            lines.append(b"content-length: 0\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def send(
        self,
        base_url: str,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        chunked_body: bool = False,
        read_timeout: float | None = None,
    ) -> UpstreamAnswer:
        """Send one request and read the answer's head; the body is left to `UpstreamAnswer`.

        A `bytes` body goes out with the head in one write (its Content-Length added); a streamed
        one with chunked framing when `chunked_body`, otherwise `headers` must carry its length.
        `read_timeout` (default the client's) bounds the wait for the head and each body read.
        """
        written = self.send_now(base_url, method, target, headers, body, read_timeout=read_timeout)
        if written is not None:
            return await written.answer()
        host, port, netloc = self._address(base_url)
        head = self._request_head(netloc, method, target, headers, body, chunked_body)
        connection = await self._connect((host, port))
        return await self._exchange(
            connection, method, head, body, chunked_body, read_timeout or self.read_timeout
        )

    def send_now(
        self,
        base_url: str,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        read_timeout: float | None = None,
    ) -> WrittenRequest | None:
        """The request written at once, before this call returns, on an idle kept-alive
        connection (None when there is none, or the body is streamed): the other side starts on
        it while the caller goes on, and `WrittenRequest.answer` reads the head later."""
        if isinstance(body, AsyncIterator):
            return None
        host, port, netloc = self._address(base_url)
        connection = self._checkout((host, port))
        if connection is None:
            return None
        head = self._request_head(netloc, method, target, headers, body, False)
        seconds = read_timeout or self.read_timeout
        self._write(connection, method, head, body)
        return WrittenRequest(self, connection, (method, head, body), seconds)

    def _write(self, connection: _Connection, method: str, head: bytes, body: bytes | None) -> None:
        transport = connection.transport
        assert transport is not None
        connection._begin(head_only=method == "HEAD", expecting=True)
        try:
            transport.write(head + body if body else head)
        except BaseException:
            connection.close()
            raise

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        chunked_body: bool,
        read_timeout: float,
    ) -> UpstreamAnswer:
        if not isinstance(body, AsyncIterator):
            self._write(connection, method, head, body)
            return await self._read_head(connection, read_timeout)
        transport = connection.transport
        assert transport is not None
        connection._begin(head_only=method == "HEAD", expecting=True)
        try:
            transport.write(head)
            async for piece in body:
                if not piece:
                    continue
                if chunked_body:
                    transport.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                else:
                    transport.write(piece)
                async with asyncio.timeout(self.write_timeout):
                    await connection.drain()
            if chunked_body:
                transport.write(b"0\r\n\r\n")
        except BaseException:
            connection.close()
            raise
        return await self._read_head(connection, read_timeout)

    async def _read_head(self, connection: _Connection, read_timeout: float) -> UpstreamAnswer:
        try:
            if not connection.head_done and connection.error is None:
                async with asyncio.timeout(read_timeout):
                    while not connection.head_done and connection.error is None:
                        await connection.wait()
        except TimeoutError as exc:
            connection.close()
            raise UpstreamTimeoutError("upstream did not answer in time") from exc
        except BaseException:
            connection.close()
            raise
        if connection.error is not None:
            connection.close()
            raise connection.error
        return UpstreamAnswer(self, connection, read_timeout)

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


class WrittenRequest:
    """A request already on a kept-alive connection, its answer not yet read."""

    def __init__(
        self,
        client: UpstreamClient,
        connection: _Connection,
        request: tuple[str, bytes, bytes | None],
        read_timeout: float,
    ) -> None:
        self._client = client
        self._connection: _Connection | None = connection
        self._request = request
        self._read_timeout = read_timeout

    async def answer(self) -> UpstreamAnswer:
        """The answer's head. A kept-alive connection the server had just closed answered
        nothing: with its body held whole, nothing is lost by sending again on a fresh one."""
        connection, self._connection = self._connection, None
        assert connection is not None, "answer() is read once"
        try:
            return await self._client._read_head(connection, self._read_timeout)
        except UpstreamProtocolError as exc:
            if not exc.closed_unanswered:
                raise
        method, head, body = self._request
        fresh = await self._client._connect(connection.address)
        return await self._client._exchange(fresh, method, head, body, False, self._read_timeout)

    def abandon(self) -> None:
        """Its answer will not be read: close the connection (nobody else may use it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
