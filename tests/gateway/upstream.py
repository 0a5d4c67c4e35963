"""A small real upstream for gateway tests: echoes requests, streams SSE, serves a JWKS.

Run in the test's event loop (`tests.fixtures.serving`) or as its own process:
`python -m tests.gateway.upstream --service users --replica a --port 9001`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from kibitz.kit.jwt import SigningKey


def create_upstream_app(
    service: str, *, replica: str = "a", signing_key: SigningKey | None = None
) -> FastAPI:
    """An app that answers under `/<service>/…` the way a kibitz service would."""
    app = FastAPI(openapi_url=f"/{service}/openapi.json", docs_url=None, redoc_url=None)
    app.state.sse_gate = asyncio.Event()
    app.state.sse_finished = False
    app.state.hits = 0

    @app.api_route(
        f"/{service}/echo/{{rest:path}}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        include_in_schema=False,
    )
    # The path of chat's send: the gateway counts it as model work.
    @app.post(f"/{service}/send", include_in_schema=False)
    @app.api_route(
        f"/{service}/echo",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        include_in_schema=False,
    )
    async def echo(request: Request) -> dict[str, Any]:
        app.state.hits += 1
        body = await request.body()
        return {
            "replica": replica,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body": body.decode("utf-8", "replace")[:2000],
        }

    @app.get(f"/{service}/things/{{thing_id}}", summary="Read one thing", responses={404: {}})
    async def read_thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    @app.get(f"/{service}/internal/things", summary="List things for other services")
    async def internal_things() -> list[int]:
        return []

    @app.post(f"/{service}/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = chunks = 0
        async for chunk in request.stream():
            size += len(chunk)
            chunks += 1 if chunk else 0
        return {"bytes": size, "chunks": chunks}

    @app.get(f"/{service}/sse")
    async def sse() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield b"event: delta\ndata: one\n\n"
            # The second event waits for the test: it can only come after the client saw the first.
            await asyncio.wait_for(app.state.sse_gate.wait(), timeout=30)
            yield b"event: delta\ndata: two\n\n"
            yield b"event: done\ndata: {}\n\n"
            app.state.sse_finished = True

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get(f"/{service}/endless")
    async def endless() -> StreamingResponse:
        async def ticks() -> AsyncIterator[bytes]:
            app.state.endless_open = True
            try:
                while True:
                    yield b"data: tick\n\n"
                    await asyncio.sleep(0.05)
            finally:
                app.state.endless_open = False

        return StreamingResponse(ticks(), media_type="text/event-stream")

    @app.get(f"/{service}/broken")
    async def broken() -> StreamingResponse:
        async def half() -> AsyncIterator[bytes]:
            yield b"first half"
            raise RuntimeError("upstream dies mid-answer")

        return StreamingResponse(half(), media_type="text/plain")

    @app.get(f"/{service}/slow")
    async def slow(seconds: float = 1.0) -> dict[str, str]:
        await asyncio.sleep(seconds)
        return {"replica": replica}

    @app.get(f"/{service}/hop-headers")
    async def hop_headers() -> JSONResponse:
        return JSONResponse(
            {"ok": True},
            headers={
                "Keep-Alive": "timeout=5",
                "Connection": "x-private-hop",
                "X-Private-Hop": "1",
                "X-Kibitz-User-Id": "should-not-leak",
                "Proxy-Authenticate": "Basic",
                "Set-Cookie": "session=abc; Path=/; HttpOnly",
                "X-Kept": "yes",
            },
        )

    @app.get(f"/{service}/internal/secret")
    async def internal_secret() -> dict[str, str]:
        return {"secret": "internal"}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse("upstream_metric 1\n")

    @app.websocket(f"/{service}/ws/{{chat_id}}")
    async def ws_echo(websocket: WebSocket, chat_id: str) -> None:
        protocols = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=protocols[0] if protocols else None)
        await websocket.send_json(
            {
                "replica": replica,
                "chat_id": chat_id,
                "query": websocket.scope["query_string"].decode(),
                "authorization": websocket.headers.get("authorization"),
                "kibitz_headers": [k for k in websocket.headers if k.startswith("x-kibitz-")],
            }
        )
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "close":
                await websocket.close(code=4000, reason="asked to")
                return
            if message.get("text") is not None:
                await websocket.send_text(f"echo:{message['text']}")
            else:
                await websocket.send_bytes(message.get("bytes") or b"")

    if signing_key is not None:

        @app.get("/auth/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [signing_key.public_jwk()]}

    return app


def main() -> None:
    """Serve one replica on a port (for the load-balancing tests)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("--replica", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_upstream_app(args.service, replica=args.replica)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
