"""The kit's HTTP/1.1 transport against aiohttp, as a client of one uvicorn server.

    .venv/bin/python bench/http_transport.py [--requests 3000] [--rounds 3]

Starts a bare ASGI app under uvicorn (httptools, uvloop) in a child process: `GET /json`
answers a small JSON body with a length, `GET /sse` 20 server-sent events chunked. The client
sends one request at a time over a kept-alive connection and prints its own CPU time and the
wall time per request, per round, alternating the clients. aiohttp is what `ServiceClient` used
for whole answers before issue 16.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop

from kibitz.kit.http.transport import UpstreamClient

_JSON = b'{"id": "0123456789", "name": "someone", "tenant": "abc"}'
_EVENT = b'event: delta\ndata: {"content": "tok"}\n\n'


async def app(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
    """The server: a JSON answer or 20 events."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/sse":
        head = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for _ in range(20):
            await send({"type": "http.response.body", "body": _EVENT, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_JSON))]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": _JSON})


async def per_request(one: Callable[[], Awaitable[None]], count: int) -> tuple[float, float]:
    """(client CPU µs, wall µs) per request, after a warm-up."""
    for _ in range(200):
        await one()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await one()
    return (
        (time.process_time() - cpu) / count * 1e6,
        (time.perf_counter() - wall) / count * 1e6,
    )


async def main(url: str, args: argparse.Namespace) -> None:
    """Alternate the clients round by round."""
    kit = UpstreamClient(connect_timeout=2.0, read_timeout=30.0, write_timeout=10.0)
    session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)
    headers = [(b"x-request-id", b"r-1")]

    def kit_call(path: bytes) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            answer = await kit.send(url, "GET", path, headers, None)
            async for _ in answer.chunks():
                pass
            answer.close()

        return one

    def aiohttp_call(path: str) -> Callable[[], Awaitable[None]]:
        async def one() -> None:
            async with session.get(url + path, headers={"x-request-id": "r-1"}) as response:
                async for _ in response.content.iter_any():
                    pass

        return one

    print("per request: client CPU / wall µs")
    for round_number in range(1, args.rounds + 1):
        for name, json_call, sse_call in (
            ("kit transport", kit_call(b"/json"), kit_call(b"/sse")),
            ("aiohttp", aiohttp_call("/json"), aiohttp_call("/sse")),
        ):
            whole = await per_request(json_call, args.requests)
            stream = await per_request(sse_call, args.requests // 2)
            print(
                f"round {round_number} {name:14} | JSON {whole[0]:6.1f} / {whole[1]:6.1f}"
                f" | 20 SSE events {stream[0]:6.1f} / {stream[1]:6.1f}"
            )
    await kit.aclose()
    await session.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=arguments.serve, log_level="warning")
        sys.exit(0)
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        uvloop.run(main(f"http://127.0.0.1:{port}", arguments))
    finally:
        server.terminate()
        server.wait(timeout=10)
