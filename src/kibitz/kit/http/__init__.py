"""HTTP: the kit's one client stack and its streaming pieces.

- `transport`: keep-alive HTTP/1.1 connections, answers parsed by llhttp (`httptools`).
- `replicas`: round-robin over a service's replicas and the one fail-over loop.
- `client`: `ServiceClient`, whole and streamed calls to another kibitz service.
- `sse`: the one server-sent-events parser and encoder.
- `event_stream`: "until the client leaves or the stream ends", and the response built on it.
- `fast_routes`: a route declared once and served below FastAPI's per-request machinery.
"""

from __future__ import annotations

from kibitz.kit.http.client import (
    ACTING_TENANT_HEADER,
    ACTING_USER_HEADER,
    FORWARDED_BY_HEADER,
    INTERNAL_TOKEN_HEADER,
    OpenedStream,
    ServiceCallError,
    ServiceClient,
    ServiceResponse,
    StreamedResponse,
    acting_for,
    forwarding_credential,
)
from kibitz.kit.http.replicas import IDEMPOTENT_METHODS, UpstreamPool, first_reachable

__all__ = [
    "ACTING_TENANT_HEADER",
    "ACTING_USER_HEADER",
    "FORWARDED_BY_HEADER",
    "IDEMPOTENT_METHODS",
    "INTERNAL_TOKEN_HEADER",
    "OpenedStream",
    "ServiceCallError",
    "ServiceClient",
    "ServiceResponse",
    "StreamedResponse",
    "UpstreamPool",
    "acting_for",
    "first_reachable",
    "forwarding_credential",
]
