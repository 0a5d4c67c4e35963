"""The API reference at `/docs`: every service's OpenAPI document, rendered on the server; and
each document at `/<service>/openapi.json`, both without the routes the gateway never routes.

Self-contained HTML (no scripts, no CDN): the page must work on a closed network.
"""

from __future__ import annotations

import asyncio
import json
import time
from html import escape
from typing import Any

import structlog
from starlette.responses import JSONResponse, Response

from kibitz.gateway.proxy import Upstreams
from kibitz.gateway.routing import ROUTED_SERVICES, is_never_routed, route_for
from kibitz.kit.errors import ServiceUnavailable
from kibitz.kit.http.replicas import NoReplicaReachable, first_reachable
from kibitz.kit.http.transport import UpstreamClient, UpstreamError

logger = structlog.get_logger("kibitz.gateway.docs")

# 30 s: documents change only with a deployment; the page need not ask five services per view.
_CACHE_SECONDS = 30.0
_FETCH_TIMEOUT_SECONDS = 3.0
SERVICE_ORDER = ("auth", "users", "tenants", "agents", "chat", "knowledge", "billing")
_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{background:#1d2330;color:#fff;padding:1rem 2rem}header a{color:#9cc3ff}
main{max-width:70rem;margin:0 auto;padding:1rem 2rem 4rem}nav a{margin-right:1rem}
h2{margin-top:2.5rem;border-bottom:2px solid #dde3ea;padding-bottom:.3rem}
.op{background:#fff;border:1px solid #dde3ea;border-radius:6px;margin:.6rem 0;padding:.2rem .8rem}
.op summary{cursor:pointer;padding:.4rem 0}.m{display:inline-block;min-width:4.2rem;font-weight:700}
.get{color:#0b7a3e}.post{color:#1957c2}.put,.patch{color:#a55d00}.delete{color:#b3261e}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f4f6f8;padding:.6rem;
overflow:auto;border-radius:4px}table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #dde3ea;padding:.2rem .5rem;text-align:left;vertical-align:top}
.muted{color:#69707d}.lock{font-size:12px;color:#69707d;margin-left:.5rem}
"""


class ApiReference:
    """Fetches each service's OpenAPI document through its upstream pool and renders one page."""

    def __init__(self, upstreams: Upstreams, http: UpstreamClient) -> None:
        self._upstreams = upstreams
        self._http = http
        self._page: tuple[float, str] | None = None

    async def document(self, service: str) -> dict[str, Any] | None:
        """One service's OpenAPI document, or None when no replica gives it."""
        pool = self._upstreams.pools.get(service)
        if pool is None:
            return None
        target = f"/{service}/openapi.json".encode()
        try:
            async with asyncio.timeout(_FETCH_TIMEOUT_SECONDS):
                answer = await first_reachable(
                    pool,
                    lambda base_url: self._http.send(base_url, "GET", target, [], None),
                    resend_after_reset=True,
                )
                try:
                    body = await answer.read()
                finally:
                    answer.close()
            if answer.status == 200:
                document: dict[str, Any] = json.loads(body)
                return public_document(document)
        except (UpstreamError, NoReplicaReachable, TimeoutError, ValueError) as exc:
            logger.warning("openapi_fetch_failed", service=service, error=type(exc).__name__)
        return None

    async def response(self, service: str) -> Response:
        """`/<service>/openapi.json` as the public sees it (503 when no replica gives it)."""
        document = await self.document(service)
        if document is None:
            raise ServiceUnavailable(f"The {service} service's API document is unavailable.")
        return JSONResponse(document, headers={"Cache-Control": "no-cache"})

    async def page(self) -> str:
        """The whole reference page (cached briefly)."""
        if self._page is not None and self._page[0] > time.monotonic():
            return self._page[1]
        services = [name for name in SERVICE_ORDER if name in ROUTED_SERVICES]
        documents = await asyncio.gather(*(self.document(name) for name in services))
        html = render_page(dict(zip(services, documents, strict=True)), self._upstreams)
        self._page = (time.monotonic() + _CACHE_SECONDS, html)
        return html


def render_page(documents: dict[str, dict[str, Any] | None], upstreams: Upstreams) -> str:
    """HTML for every service: its routes with parameters, bodies and answers."""
    nav = " ".join(f'<a href="#{name}">{name}</a>' for name in documents)
    links = ", ".join(f'<a href="/{n}/openapi.json">/{n}/openapi.json</a>' for n in documents)
    sections = []
    for name, document in documents.items():
        if document is None:
            state = (
                "not part of this deployment"
                if name not in upstreams.pools
                else "not reachable right now"
            )
            sections.append(
                f'<h2 id="{name}">{name}</h2><p class="muted">The {name} service is {state}.</p>'
            )
            continue
        sections.append(_render_service(name, document))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>kibitz API reference</title><style>{_STYLE}</style></head>
<body><header><h1>kibitz API reference</h1>
<p>Every route answers JSON; errors are <code>application/problem+json</code> (RFC 9457).
Send <code>Authorization: Bearer &lt;access token&gt;</code> except on public routes.
Machine-readable documents: {links}.
</p></header><main><nav>{nav}</nav>{"".join(sections)}</main></body></html>"""


def _render_service(name: str, document: dict[str, Any]) -> str:
    info = document.get("info", {})
    parts = [
        f'<h2 id="{name}">{escape(str(info.get("title", name)))} '
        f'<span class="muted">{escape(str(info.get("version", "")))}</span></h2>'
    ]
    if info.get("description"):
        parts.append(f"<p>{escape(str(info['description']))}</p>")
    for path, operations in sorted(document.get("paths", {}).items()):
        for method in _METHODS:
            operation = operations.get(method)
            if operation is not None:
                parts.append(_render_operation(method, path, operation, document))
    return "".join(parts)


def public_document(document: dict[str, Any]) -> dict[str, Any]:
    """A service's OpenAPI document without the paths the gateway never routes: the one filter
    behind both `/docs` and `/<service>/openapi.json` through the gateway."""
    paths = document.get("paths")
    if not isinstance(paths, dict):
        return document
    public = {path: item for path, item in paths.items() if is_public_path(path)}
    return {**document, "paths": public}


def is_public_path(path: str) -> bool:
    """Whether the gateway routes this path to a service at all: internal routes, metrics and
    health checks are the services' own and would only answer 404 through it."""
    return route_for("GET", path) is not None and not is_never_routed(path)


def _render_operation(
    method: str, path: str, operation: dict[str, Any], document: dict[str, Any]
) -> str:
    summary = escape(str(operation.get("summary", "")))
    secured = bool(operation.get("security") or document.get("security"))
    lock = '<span class="lock">bearer token</span>' if secured else ""
    body = []
    if operation.get("description"):
        body.append(f"<p>{escape(str(operation['description']))}</p>")
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}</td>"
            f"<td>{'required' if p.get('required') else 'optional'}</td>"
            f"<td><code>{escape(_schema_label(p.get('schema', {})))}</code></td></tr>"
            for p in parameters
        )
        body.append(
            f"<table><tr><th>parameter</th><th>in</th><th></th><th>type</th></tr>{rows}</table>"
        )
    request_body = operation.get("requestBody")
    if request_body:
        for media_type, content in request_body.get("content", {}).items():
            schema = _resolve(content.get("schema", {}), document)
            body.append(
                f"<p>Request body (<code>{escape(media_type)}</code>):</p>"
                f"<pre>{escape(json.dumps(schema, indent=2)[:6000])}</pre>"
            )
    responses = operation.get("responses", {})
    if responses:
        rows = "".join(
            f"<tr><td><code>{escape(str(status))}</code></td>"
            f"<td>{escape(str(answer.get('description', '')))}</td>"
            f"<td>{escape(', '.join(answer.get('content', {})))}</td></tr>"
            for status, answer in sorted(responses.items())
        )
        body.append(
            f"<table><tr><th>status</th><th>meaning</th><th>content</th></tr>{rows}</table>"
        )
    return (
        f'<details class="op"><summary><span class="m {method}">{method.upper()}</span>'
        f"<code>{escape(path)}</code> {summary}{lock}</summary>{''.join(body)}</details>"
    )


def _schema_label(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_label(option) for option in schema["anyOf"])
    return str(schema.get("type", "any"))


def _resolve(schema: dict[str, Any], document: dict[str, Any], depth: int = 0) -> Any:
    """Inline `$ref`s (a few levels deep) so a request body reads as one JSON schema."""
    if depth > 4:
        return schema
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            target = document.get("components", {}).get("schemas", {}).get(name, {})
            return _resolve(target, document, depth + 1)
        return {key: _resolve(value, document, depth) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_resolve(item, document, depth) for item in schema]
    return schema
