"""SSRF guard for user-supplied URLs (agents' base URLs, tenants' identity providers): resolve
once, refuse private targets, pin the address.

The checked address is the one connected to (`PinnedTransport`), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot redirect the call.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# 5 s: a resolver that takes longer is broken for our purposes.
_RESOLVE_TIMEOUT_SECONDS = 5.0


class UnsafeAddressError(ValueError):
    """The URL is malformed, not http(s), or reaches an address that is not allowed."""


@dataclass(frozen=True)
class PinnedAddress:
    """A checked base URL: where it points and the address to connect to."""

    scheme: str
    host: str
    port: int
    ip: str


class AllowList:
    """Hostnames, addresses and networks the operator lets users reach although they are private."""

    def __init__(self, entries: list[str], *, setting: str = "") -> None:
        # The variable that holds the list, named in refusals so the operator knows where.
        self.setting = setting
        self.hosts: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def allows(self, host: str, ip: IPAddress) -> bool:
        """Whether this host or address is allow-listed."""
        return host in self.hosts or any(ip in network for network in self.networks)


# NAT64 (RFC 6052, RFC 8215): the well-known prefix carries an IPv4 address in its last 32 bits;
# the local-use prefix belongs to one network, so nothing behind it is public.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# ::a.b.c.d (IPv4-compatible, RFC 4291, deprecated) and ::ffff:0:a.b.c.d (IPv4-translated,
# RFC 2765): the IPv4 address in the last 32 bits.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


def _last_32_bits(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address stands for (mapped, compatible, translated, NAT64,
    6to4, both ends of Teredo), or None when it is a plain IPv6 address."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN:
        return [_last_32_bits(ip)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return None


def _globally_routable(ip: IPAddress) -> bool:
    # Site-local (fec0::/10) was deprecated long ago, but Python still calls it global.
    return (
        ip.is_global
        and not ip.is_multicast
        and not (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )


def is_public(ip: IPAddress) -> bool:
    """Whether an address is globally routable (not loopback, private, link-local, metadata…),
    judged by the IPv4 address it stands for when it is one of IPv6's IPv4 forms."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _globally_routable(ip)
    if ip in _NAT64_LOCAL_USE:
        return False
    inner = _embedded(ip)
    if inner is None:
        return _globally_routable(ip)
    return all(_globally_routable(address) for address in inner)


def parse_base_url(base_url: str) -> tuple[str, str, int]:
    """Scheme, lower-case host and port of an http(s) URL without credentials."""
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeAddressError("is not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeAddressError("must use http or https")
    if not parts.hostname:
        raise UnsafeAddressError("has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeAddressError("must not carry credentials (use api_key)")
    if parts.fragment:
        raise UnsafeAddressError("must not have a fragment")
    host = parts.hostname.lower().rstrip(".")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        raise UnsafeAddressError("host does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeAddressError("host does not resolve")
    return addresses


async def check_base_url(base_url: str, allow_list: AllowList) -> PinnedAddress:
    """Resolve the URL's host once; every address must be public or allow-listed."""
    scheme, host, port = parse_base_url(base_url)
    addresses = await _resolve(host, port)
    for address in addresses:
        if not is_public(address) and not allow_list.allows(host, address):
            where = f" ({allow_list.setting})" if allow_list.setting else ""
            raise UnsafeAddressError(
                "points at a loopback, private, link-local or reserved address; "
                f"the operator must allow-list it{where}"
            )
    return PinnedAddress(scheme=scheme, host=host, port=port, ip=str(addresses[0]))


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """Connects requests for the pinned host to the checked address (TLS still names the host)."""

    def __init__(self, pinned: PinnedAddress, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.pinned = pinned

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Rewrite the host to the pinned address; refuse any other host (no redirects out)."""
        if request.url.host.lower().rstrip(".") != self.pinned.host:
            raise httpx2.ConnectError("request to a host that was not checked", request=request)
        # The Host header was set from the original URL when the request was built.
        request.url = request.url.copy_with(host=self.pinned.ip)
        request.extensions = {**request.extensions, "sni_hostname": self.pinned.host}
        return await super().handle_async_request(request)
