"""A lean HTTP/1.1 keep-alive client for the hottest hops: the gateway's proxy, and a service's
streamed call to another (chat asking agents for every reply).

Why not httpx or aiohttp there: measured on the target machine, one proxied request through
httpx/httpcore cost ~0.85 ms of CPU (anyio streams, h11's state machine, pool bookkeeping), more
than the whole budget of 1 ms the gateway may add; and a reply's first token came ~0.5 ms
sooner at one user when chat's call to agents went through this instead of aiohttp (alternating
sends, four runs: 0.5-0.65 ms, 2 ms in a noisy one). These hops need very little: send one
request head (plus a body) on a pooled connection, read one answer head, relay the body as it
comes. This does exactly that on asyncio streams; httpx and aiohttp stay in use everywhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# A head larger than this is refused (uvicorn and most servers cap theirs lower).
_MAX_HEAD_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


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


@dataclass(eq=False)
class _Connection:
    address: tuple[str, int]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, idle_seconds: float) -> bool:
        return (
            now - self.idle_since < idle_seconds
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(eq=False)
class UpstreamAnswer:
    """An answer whose head has been read; its body is read by iterating `chunks()`."""

    status: int
    headers: list[tuple[bytes, bytes]]
    _client: UpstreamClient
    _connection: _Connection | None
    _length: int | None
    _chunked: bool
    _reusable: bool
    _done: bool = field(default=False)

    @property
    def has_length(self) -> bool:
        """Whether the answer says how long it is (otherwise it may be endless, like SSE)."""
        return self._length is not None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece as it arrives (chunked framing removed, nothing decoded)."""
        connection = self._connection
        if connection is None:
            return
        reader = connection.reader
        watch = _ReadWatch(connection, self._client.read_timeout)
        try:
            if self._chunked:
                async for piece in _dechunk(reader, watch):
                    yield piece
            elif self._length is not None:
                async for piece in _pieces(reader, watch, self._length):
                    yield piece
            else:
                # Neither length nor chunks: the body ends when the upstream closes.
                while piece := await watch.waiting(reader.read(_READ_CHUNK_BYTES)):
                    yield piece
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            if watch.expired:
                raise UpstreamTimeoutError("upstream stopped sending") from exc
            raise UpstreamProtocolError(f"upstream body broke: {type(exc).__name__}") from exc
        finally:
            watch.stop()
        self._done = True

    def close(self) -> None:
        """Give the connection back for reuse when the answer was read whole, else close it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._done and self._reusable:
            self._client.release(connection)
        else:
            connection.close()


class _ReadWatch:
    """The read timeout of a body: aborts the connection when one read waits `seconds`.

    One timer per `seconds`, not one per read: an `asyncio.timeout` costs ~9 µs hot (a timer
    made and cancelled each time), and reading a 20-event stream with one per chunk cost
    1.5-1.8 ms of CPU against 0.8-1.1 ms with this watch (client and server, measured here)."""

    def __init__(self, connection: _Connection, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = connection.writer.transport
        self._seconds = seconds
        self._since: float | None = None  # when the read in progress began
        self.expired = False
        self._timer = self._loop.call_later(seconds, self._check)

    def begin(self) -> None:
        """A read starts waiting."""
        self._since = self._loop.time()

    def end(self) -> None:
        """The read got its bytes."""
        self._since = None

    async def waiting(self, read: Awaitable[bytes]) -> bytes:
        """One read, watched."""
        self.begin()
        data = await read
        self.end()
        return data

    def _check(self) -> None:
        if self._transport.is_closing():
            return  # closed meanwhile: nothing left to watch
        now = self._loop.time()
        since = self._since
        if since is not None and now - since >= self._seconds:
            self.expired = True
            self._transport.abort()  # the waiting read fails at once
            return
        due = (since if since is not None else now) + self._seconds
        self._timer = self._loop.call_at(due, self._check)

    def stop(self) -> None:
        """The body is over (or abandoned)."""
        self._timer.cancel()


async def _pieces(
    reader: asyncio.StreamReader, watch: _ReadWatch, size: int
) -> AsyncIterator[bytes]:
    """The next `size` bytes, piece by piece as they arrive."""
    remaining = size
    while remaining > 0:
        piece = await watch.waiting(reader.read(min(remaining, _READ_CHUNK_BYTES)))
        if not piece:
            raise UpstreamProtocolError("connection closed before the body ended")
        remaining -= len(piece)
        yield piece


async def _dechunk(reader: asyncio.StreamReader, watch: _ReadWatch) -> AsyncIterator[bytes]:
    while True:
        # One watched wait per chunk (a streamed token is one small chunk).
        watch.begin()
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers (ignored) up to the empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            watch.end()
            return
        if size <= _READ_CHUNK_BYTES:
            framed = await reader.readexactly(size + 2)
            watch.end()
            if framed[-2:] != b"\r\n":
                raise UpstreamProtocolError("bad chunk framing")
            yield framed[:-2]
            continue
        watch.end()
        # A large chunk goes on as it arrives.
        async for part in _pieces(reader, watch, size):
            yield part
        if await watch.waiting(reader.readexactly(2)) != b"\r\n":
            raise UpstreamProtocolError("bad chunk framing")


def _parse_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0]
    if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
        raise UpstreamProtocolError("not an HTTP/1.x answer")
    try:
        status = int(status_line[9:12])
    except ValueError as exc:
        raise UpstreamProtocolError("bad status line") from exc
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise UpstreamProtocolError("bad header line")
        headers.append((name.lower(), value.strip()))
    return status, headers


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
        idle = self._idle.setdefault(connection.address, [])
        if len(idle) >= self.max_idle_per_address or connection.writer.is_closing():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, address: tuple[str, int]) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    address[0], address[1], limit=_MAX_HEAD_BYTES
                )
        except TimeoutError as exc:
            raise UpstreamConnectError("connect timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect: {exc.strerror or exc}") from exc
        return _Connection(address, reader, writer)

    async def send(
        self,
        base_url: str,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
        *,
        chunked_body: bool = False,
        sent: asyncio.Event | None = None,
    ) -> UpstreamAnswer:
        """Send one request and read the answer's head; the body is left to `UpstreamAnswer`.

        A `bytes` body goes out with the head in one write (its Content-Length added); a streamed
        one with chunked framing when `chunked_body`, otherwise `headers` must carry its length.
        `sent` is set once the whole request is on the connection, before the answer is awaited.
        """
        host, port, netloc = self._address(base_url)
        address = (host, port)
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
        head = b"".join(lines)

        connection = self._checkout(address)
        if connection is not None and not isinstance(body, AsyncIterator):
            try:
                return await self._exchange(connection, method, head, body, chunked_body, sent)
            except UpstreamProtocolError as exc:
                # A kept-alive connection the server had just closed: nothing was answered, and
                # with no body, or one held whole, nothing is lost by sending again on a fresh
                # connection.
                if not exc.closed_unanswered:
                    raise
            connection = None
        if connection is None:
            connection = await self._connect(address)
        return await self._exchange(connection, method, head, body, chunked_body, sent)

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        chunked_body: bool,
        sent: asyncio.Event | None,
    ) -> UpstreamAnswer:
        reader, writer = connection.reader, connection.writer
        try:
            if isinstance(body, bytes):
                writer.write(head + body)
            else:
                writer.write(head)
            if isinstance(body, AsyncIterator):
                async for piece in body:
                    if not piece:
                        continue
                    if chunked_body:
                        writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                    else:
                        writer.write(piece)
                    async with asyncio.timeout(self.write_timeout):
                        await writer.drain()
                if chunked_body:
                    writer.write(b"0\r\n\r\n")
            if sent is not None:
                sent.set()
            while True:
                async with asyncio.timeout(self.read_timeout):
                    raw_head = await reader.readuntil(b"\r\n\r\n")
                status, headers = _parse_head(raw_head)
                # 1xx interim answers (100 Continue, 103 Early Hints) precede the real one.
                if not 100 <= status < 200:
                    break
                if status == 101:
                    raise UpstreamProtocolError("unexpected protocol switch")
        except TimeoutError as exc:
            connection.close()
            raise UpstreamTimeoutError("upstream did not answer in time") from exc
        except asyncio.IncompleteReadError as exc:
            connection.close()
            raise UpstreamProtocolError(
                "connection closed before an answer", closed_unanswered=not exc.partial
            ) from exc
        except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
            connection.close()
            raise UpstreamProtocolError(f"connection broke: {type(exc).__name__}") from exc
        except UpstreamProtocolError:
            connection.close()
            raise

        length: int | None = None
        chunked = False
        reusable = raw_head.startswith(b"HTTP/1.1")
        for name, value in headers:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError as exc:
                    connection.close()
                    raise UpstreamProtocolError("bad content-length") from exc
            elif name == b"transfer-encoding":
                chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
            elif name == b"connection" and b"close" in value.lower():
                reusable = False
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            length, chunked = 0, False
        elif chunked:
            length = None
        elif length is None:
            reusable = False
        answer = UpstreamAnswer(
            status=status,
            headers=headers,
            _client=self,
            _connection=connection,
            _length=length,
            _chunked=chunked,
            _reusable=reusable,
        )
        if length == 0:
            answer._done = True
        return answer

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
