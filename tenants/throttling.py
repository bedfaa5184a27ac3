"""Who is asking: the client address that login throttles and lockouts count by.

A client writes whatever it likes into `X-Forwarded-For`, so the header is read only when the
socket's peer (`REMOTE_ADDR`) is a proxy the operator listed in `CONDUIT_TRUSTED_PROXIES`; then
the client is the right-most address of the header that no trusted proxy wrote. `X-Real-IP`,
`Forwarded` and the like are never read. DRF's throttles and django-axes both ask here.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every IPv6 client is given a /64 at least: counting its single addresses would let it rotate them.
IPV6_THROTTLE_PREFIX = 64
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _networks(listed: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in listed:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"CONDUIT_TRUSTED_PROXIES: {entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)."
            ) from None
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    return _networks(tuple(settings.CONDUIT_TRUSTED_PROXIES))


def parse_address(text: str) -> Address | None:
    """An address as proxies and servers write it (`1.2.3.4`, `1.2.3.4:567`, `[2001:db8::1]:567`), or None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # one client, one form: ::ffff:192.0.2.1 is 192.0.2.1
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request: HttpRequest | Request) -> str | None:
    """The client's IP address: the socket's peer unless that peer is a trusted proxy (see the module)."""
    peer = parse_address(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return None
    networks = trusted_proxies()
    if not _is_trusted(peer, networks):
        return str(peer)
    address = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        forwarded = parse_address(hop)
        if forwarded is None:
            break  # no trusted proxy writes this: what follows to the left is the client's own text
        address = forwarded
        if not _is_trusted(forwarded, networks):
            break
    return str(address)


def throttle_ident(request: HttpRequest | Request) -> str:
    """What a throttle counts by: the client address, an IPv6 one as its /64."""
    address = client_address(request)
    if address is None:
        return UNKNOWN
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_THROTTLE_PREFIX}", strict=False))
    return address


class ClientAddressThrottleMixin:
    """For every DRF throttle of the project: count by `throttle_ident`, never by the raw header."""

    def get_ident(self, request: Request) -> str:
        return throttle_ident(request)


class LoginRateThrottle(ClientAddressThrottleMixin, ScopedRateThrottle):
    """The token endpoint's limit (scope `login`, `LOGIN_THROTTLE_RATE`), per client address."""
