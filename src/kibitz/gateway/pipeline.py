"""What every public request goes through: route, token check, rate limit, then the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from kibitz.gateway.api_keys import ApiKeyExchange, is_api_key
from kibitz.gateway.docs import ApiReference
from kibitz.gateway.plans import PlanLimits
from kibitz.gateway.proxy import Proxy, client_ip_of
from kibitz.gateway.rate_limits import Allowance, RateLimits
from kibitz.gateway.routing import OPENAI_COMPATIBLE_PREFIX, is_never_routed, route_for
from kibitz.gateway.tokens import TokenCheck
from kibitz.gateway.web import WebUI, wants_html
from kibitz.gateway.websocket_proxy import refuse, relay_websocket
from kibitz.kit.errors import NotFound, ProblemError, ServiceUnavailable, Unauthorized
from kibitz.kit.http import ServiceCallError
from kibitz.kit.jwt import InvalidToken, Principal
from kibitz.kit.observability import request_id_of
from kibitz.kit.openai_errors import openai_error_response

_NOT_ROUTED = "No such route."
_PLAN_CHANGE = ("POST", "/tenants/subscribe")
_API_KEYS_PATH = "/auth/api-keys/"
# 10 s for a WebSocket client to send its auth message, as the chat service allows.
_WS_AUTH_SECONDS = 10.0


@dataclass
class Pipeline:
    """The gateway's parts, wired once per app."""

    proxy: Proxy
    tokens: TokenCheck
    plans: PlanLimits
    limits: RateLimits
    web: WebUI
    auth_ip_requests_per_minute: int
    read_requests_per_minute: int
    trust_forwarded_for: bool
    # None without an auth service to exchange personal API keys with.
    api_keys: ApiKeyExchange | None = None
    # Serves `/<service>/openapi.json` filtered as `/docs` shows it (None: proxied as is).
    reference: ApiReference | None = None

    async def handle(self, request: Request) -> Response:
        """Answer one public HTTP request (OpenAI-compatible routes refuse in OpenAI's shape)."""
        if not request.scope["path"].startswith(OPENAI_COMPATIBLE_PREFIX):
            return await self._handle(request)
        try:
            return await self._handle(request)
        except ProblemError as problem:
            return openai_error_response(problem)

    async def _handle(self, request: Request) -> Response:
        scope = request.scope
        path: str = scope["path"]
        method: str = scope["method"]
        if is_never_routed(path):
            raise NotFound(_NOT_ROUTED)
        route = route_for(method, path)
        if route is None or (
            wants_html(request) and not path.endswith(".json") and not route.navigation
        ):
            # Web pages share prefixes with the API (/chat/:id, /agents): navigations get the app.
            return self.web.response(request)
        self.proxy.upstreams.pool(route.service)  # 503 at once for a service not deployed
        if route.api_document and self.reference is not None and method in ("GET", "HEAD"):
            return await self.reference.response(route.service)
        allowance: Allowance | None = None
        principal: Principal | None = None
        if route.public:
            if route.ip_limited:
                client_ip = client_ip_of(scope, trust_forwarded_for=self.trust_forwarded_for)
                allowance = await self.limits.hit(
                    "ip", client_ip, per_minute=self.auth_ip_requests_per_minute
                )
                if allowance is not None and not allowance.allowed:
                    raise allowance.rejection(
                        "Too many requests from this address; slow down.", limit_name="address"
                    )
        else:
            principal = await self._principal(_bearer_token(request), request)
            if route.cost == "work":
                allowance = await self._tenant_allowance(principal)
            else:
                allowance = await self._read_allowance(principal)
        response = await self.proxy.forward(
            request,
            route.service,
            request_id=request_id_of(request),
            extra_headers=allowance.headers() if allowance is not None else (),
        )
        if principal is not None and (method, path) == _PLAN_CHANGE and response.status_code < 300:
            # The subscriber's own next request sees the new plan at once; the
            # `tenants.plan_changed` event updates every other replica moments later.
            self.plans.forget(principal.tenant_id)
        if (
            self.api_keys is not None
            and method == "DELETE"
            and path.startswith(_API_KEYS_PATH)
            and response.status_code == 204
        ):
            # This replica forgets the key at once; `auth.api_key_revoked` tells the others.
            with contextlib.suppress(ValueError):
                self.api_keys.forget(uuid.UUID(path.removeprefix(_API_KEYS_PATH)))
        return response

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Check the token and the limit, then relay the WebSocket to the chat service.

        Browsers cannot set headers on a WebSocket, so (as the chat service does) the token may
        also come as `Sec-WebSocket-Protocol: bearer, <token>` or as the first message
        `{"type": "auth", "token": "..."}`, which is then passed on to the service.
        """
        scope = websocket.scope
        route = route_for("GET", scope["path"])
        first_message: str | None = None
        try:
            if route is None or is_never_routed(scope["path"]):
                raise NotFound(_NOT_ROUTED)
            self.proxy.upstreams.pool(route.service)
            token = _bearer_token(websocket) or _subprotocol_token(websocket)
            if token is None:
                await websocket.accept()
                first_message, token = await _auth_message(websocket)
            principal = await self._principal(token, websocket)
            # The socket only carries replies to the client: opening it is a read.
            await self._read_allowance(principal)
        except ProblemError as error:
            await refuse(websocket, error)
            return
        await relay_websocket(
            websocket,
            self.proxy.upstreams,
            route.service,
            request_id=str(scope.get("state", {}).get("request_id", "")),
            client_ip=client_ip_of(scope, trust_forwarded_for=self.trust_forwarded_for),
            first_message=first_message,
        )

    async def _principal(self, token: str | None, connection: Request | WebSocket) -> Principal:
        if token is None:
            raise Unauthorized("Missing bearer token.")
        if self.api_keys is not None and is_api_key(token):
            identity = await self.api_keys.identity(token)
            # The service behind sees the key user's access token, never the key.
            _set_bearer_token(connection, identity.access_token)
            return identity.principal
        try:
            return await self.tokens.principal(token)
        except InvalidToken as exc:
            raise Unauthorized("Invalid or expired access token.") from exc
        except ServiceCallError as exc:
            # The signing keys could not be fetched: the token cannot be judged either way.
            raise ServiceUnavailable("Access tokens cannot be checked right now.") from exc

    async def _tenant_allowance(self, principal: Principal) -> Allowance | None:
        per_minute = await self.plans.requests_per_minute(principal.tenant_id)
        allowance = await self.limits.hit(
            "tenant",
            str(principal.tenant_id),
            per_minute=per_minute,
            plan=self.plans.plan_name(principal.tenant_id),
        )
        if allowance is not None and not allowance.allowed:
            raise allowance.rejection(
                f"Your plan allows {per_minute} requests per minute; try again shortly.",
                limit_name="plan",
            )
        return allowance

    async def _read_allowance(self, principal: Principal) -> Allowance | None:
        per_minute = self.read_requests_per_minute
        allowance = await self.limits.hit("user", str(principal.user_id), per_minute=per_minute)
        if allowance is not None and not allowance.allowed:
            raise allowance.rejection(
                f"You can make {per_minute} requests per minute; try again shortly.",
                limit_name="reads",
            )
        return allowance


def _subprotocol_token(websocket: WebSocket) -> str | None:
    protocols = [
        item.strip()
        for item in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if item.strip()
    ]
    if "bearer" in protocols:
        position = protocols.index("bearer")
        if position + 1 < len(protocols):
            return protocols[position + 1]
    return None


async def _auth_message(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The client's first message and the token in it, if it is `{"type": "auth", ...}`."""
    try:
        text = await asyncio.wait_for(websocket.receive_text(), _WS_AUTH_SECONDS)
        message = json.loads(text)
    except (TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
        return None, None
    if isinstance(message, dict) and message.get("type") == "auth":
        return text, str(message.get("token") or "") or None
    return None, None


def _set_bearer_token(connection: Request | WebSocket, token: str) -> None:
    scope = connection.scope
    headers = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
    headers.append((b"authorization", b"Bearer " + token.encode()))
    scope["headers"] = headers


def _bearer_token(connection: Request | WebSocket) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
