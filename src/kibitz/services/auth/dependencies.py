"""Request-scoped dependencies: the session, the service, the caller's address."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from kibitz.services.auth.config import AuthSettings
from kibitz.services.auth.service import AuthService
from kibitz.services.auth.sso.service import SsoService


async def _auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


AuthServiceDep = Annotated[AuthService, Depends(_auth_service)]


async def _sso_service(request: Request) -> SsoService:
    service: SsoService = request.app.state.sso_service
    return service


SsoServiceDep = Annotated[SsoService, Depends(_sso_service)]


def _trusted_proxy(request: Request) -> bool:
    settings: AuthSettings = request.app.state.auth_settings
    peer = request.client.host if request.client else ""
    return peer in settings.trusted_proxy_addresses


async def client_ip(request: Request) -> str:
    """The client's address; X-Forwarded-For counts only when a trusted proxy sent it."""
    peer = request.client.host if request.client else "unknown"
    if _trusted_proxy(request):
        forwarded = request.headers.get("x-forwarded-for", "")
        # The last hop is the one our proxy appended; earlier ones the client could forge.
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass
    return peer


def request_is_https(request: Request) -> bool:
    """Whether the client reached us over https (directly, or per a trusted proxy)."""
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return _trusted_proxy(request) and proto == "https"


ClientIp = Annotated[str, Depends(client_ip)]
