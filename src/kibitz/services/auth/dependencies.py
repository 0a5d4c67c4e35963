"""Request-scoped dependencies: the session, the service, the caller's address."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, Request

from kibitz.kit.http import FORWARDED_BY_HEADER
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
    """Whether the caller is the gateway (it presents the forwarding credential) or another
    proxy the operator named (`KIBITZ_AUTH_TRUSTED_PROXIES`). Being on loopback is not enough:
    any local process reaches auth's port."""
    presented = request.headers.get(FORWARDED_BY_HEADER, "")
    expected: str = getattr(request.app.state, "forwarding_credential", "")
    if presented and expected and hmac.compare_digest(presented.encode(), expected.encode()):
        return True
    settings: AuthSettings = request.app.state.auth_settings
    try:
        peer = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    return any(peer in network for network in settings.trusted_proxy_networks)


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
