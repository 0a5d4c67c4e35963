"""WebSocket pass-through (`/chat/ws/{chat_id}`): frames relayed both ways as they come."""

from __future__ import annotations

import contextlib

import structlog
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from kibitz.gateway.proxy import Upstreams, forwardable
from kibitz.kit.errors import ProblemError, ServiceUnavailable, problem_response
from kibitz.kit.http.event_stream import until_first
from kibitz.kit.tracing import TRACE_HEADERS, trace_headers

logger = structlog.get_logger("kibitz.gateway.websocket")

# The client library makes its own handshake; the client's copies of these would clash.
_HANDSHAKE_HEADERS = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        # The gateway's own trace context replaces a public caller's (see proxy.py).
        *TRACE_HEADERS,
    }
)
# 1 MiB per message, as the chat service's own limit.
_MAX_MESSAGE_BYTES = 2**20
_OPEN_TIMEOUT_SECONDS = 5.0
# Policy violation: the close code a refused connection gets when the server cannot send a 4xx.
_POLICY_VIOLATION = 1008
_INTERNAL_ERROR = 1011
_TRY_AGAIN_LATER = 1013


def close_code_for(error: ProblemError) -> int:
    """The WebSocket close code telling a client, after the handshake, what went wrong."""
    if error.status in (401, 403, 404, 429):
        return 4000 + error.status  # the convention kibitz's chat service uses (4401, 4404)
    return _TRY_AGAIN_LATER if error.status in (502, 503, 504) else _INTERNAL_ERROR


async def refuse(websocket: WebSocket, error: ProblemError) -> None:
    """Refuse a connection: a problem+json HTTP answer before the handshake, a close code after."""
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=close_code_for(error), reason=error.title[:120])
    elif "websocket.http.response" in websocket.scope.get("extensions", {}):
        response: Response = problem_response(error)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=_POLICY_VIOLATION, reason=error.detail[:120])


async def relay_websocket(
    websocket: WebSocket,
    upstreams: Upstreams,
    service: str,
    *,
    request_id: str,
    client_ip: str,
    first_message: str | None = None,
) -> None:
    """Open the same path on a replica, then copy frames both ways until either side closes.

    `first_message` (already read from the client, e.g. its auth message) is sent upstream first.
    """
    pool = upstreams.pool(service)
    scope = websocket.scope
    target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in forwardable(scope["headers"], _HANDSHAKE_HEADERS)
    ]
    headers += [("x-request-id", request_id), ("x-forwarded-for", client_ip)]
    headers += trace_headers().items()  # the socket joins the gateway's trace (none when off)
    requested = [
        protocol.strip()
        for protocol in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if protocol.strip()
    ]
    upstream: ClientConnection | None = None
    for base_url in pool.candidates()[:2]:
        try:
            upstream = await connect(
                "ws" + base_url.removeprefix("http") + target,
                additional_headers=headers,
                subprotocols=requested or None,  # type: ignore[arg-type]
                open_timeout=_OPEN_TIMEOUT_SECONDS,
                max_size=_MAX_MESSAGE_BYTES,
                compression=None,
                user_agent_header=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            await refuse(
                websocket,
                ProblemError(
                    exc.response.body.decode("utf-8", "replace")[:200] or "Refused.",
                    status=status,
                    problem_type=f"http-{status}",
                    title="Refused by the service",
                ),
            )
            return
        except (OSError, TimeoutError, InvalidHandshake):
            pool.mark_failed(base_url)
            continue
        pool.mark_ok(base_url)
        break
    if upstream is None:
        await refuse(
            websocket, ServiceUnavailable(f"No replica of the {service} service is reachable.")
        )
        return
    async with upstream:
        if websocket.application_state != WebSocketState.CONNECTED:
            await websocket.accept(subprotocol=upstream.subprotocol)
        if first_message is not None:
            await upstream.send(first_message)
        await _pump_both_ways(websocket, upstream)


async def _pump_both_ways(websocket: WebSocket, upstream: ClientConnection) -> None:
    async def client_to_upstream() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(code=message.get("code", 1000))
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def upstream_to_client() -> None:
        try:
            async for frame in upstream:
                if isinstance(frame, str):
                    await websocket.send_text(frame)
                else:
                    await websocket.send_bytes(frame)
        except ConnectionClosed:
            pass
        close = upstream.close_code or 1000
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=close, reason=upstream.close_reason or "")

    # Either side ending ends the relay (the other direction is cancelled).
    try:
        await until_first(upstream_to_client(), client_to_upstream())
    except (ConnectionClosed, WebSocketDisconnect):
        pass
    except Exception as exc:
        logger.warning("websocket_relay_failed", error=type(exc).__name__)
