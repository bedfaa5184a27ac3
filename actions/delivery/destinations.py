"""Outbound safety (SPEC section 2): which addresses a call may reach, checked on the resolved IP.

Shared by HTTP calls (transport) and SMTP (emails): every socket Conduit opens to a provider
is opened by `connect_allowed`, so a name that resolves to a private address is refused
whatever the protocol.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Never public, checked explicitly because some Python versions call parts of them global
# (CPython issue 113171; this venv runs 3.11.7, which predates the fix).
_ALWAYS_SPECIAL = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "100.64.0.0/10",  # shared address space (carrier-grade NAT): reaches internal workloads
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "2001::/23",  # IETF protocol assignments, Teredo included
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
    )
)


_SHARED_ADDRESS_SPACE = _ALWAYS_SPECIAL[0]


class DestinationRefused(Exception):
    """The destination is not allowed by outbound safety; the message is a sentence."""


@functools.lru_cache(maxsize=8)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)
    except ValueError as exc:
        raise ImproperlyConfigured(f"CONDUIT_ALLOWED_PRIVATE_NETWORKS: {exc}") from exc


def _allowed_networks() -> tuple[IPNetwork, ...]:
    # Read at call time, so that a changed setting (and tests) take effect without a restart.
    cidrs = getattr(settings, "CONDUIT_ALLOWED_PRIVATE_NETWORKS", None) or ()
    return _parse_networks(tuple(cidrs))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not be called, as the end of "<ip> is ...", or None if public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _refusal_reason(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global or any(address in network for network in _ALWAYS_SPECIAL):
        return "a special-purpose address"
    return None


def check_destination_ip(ip: str) -> None:
    """Raise DestinationRefused unless Conduit may connect to this IP (SPEC 2, outbound safety).

    Private-like addresses pass only when their network is in CONDUIT_ALLOWED_PRIVATE_NETWORKS.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise DestinationRefused(f"Refused: {ip} is not an IP address.") from exc
    reason = _refusal_reason(address)
    if reason is None:
        return
    # An IPv4-mapped address is the same host, reached the same way: it matches its IPv4 network.
    # The 6to4 and NAT64 forms route through a relay or a translator, off this machine: they are
    # allowed only when listed as such, never because the IPv4 address inside them is.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    networks = _allowed_networks()
    if any(c is not None and c in network for c in (address, mapped) for network in networks):
        return
    embedded = None if mapped is not None else _embedded_ipv4(address)
    listed_inside = embedded is not None and any(embedded in network for network in networks)
    form = " (through a 6to4 relay or NAT64, allowed only when listed as such)" if listed_inside else ""
    raise DestinationRefused(
        f"Refused: {ip} is {reason}{form}. List its network in CONDUIT_ALLOWED_PRIVATE_NETWORKS to allow it."
    )


def _host_and_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class ConnectFailed(OSError):
    """Every allowed address failed; `peer` is the last one tried, `error` why."""

    def __init__(self, peer: str, error: OSError) -> None:
        super().__init__(str(error))
        self.peer, self.error = peer, error


def connect_allowed(
    host: str, port: int, *, timeout: Any = None, family: int = 0, options: Any = (), source_address: Any = None
) -> socket.socket:
    """Resolve `host`, check every candidate IP, connect to the first allowed one that answers.

    Raises socket.gaierror, DestinationRefused (nothing allowed to try) or ConnectFailed. HTTP
    calls and the SMTP connection of email actions both connect through here.
    """
    candidates = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    refusal: DestinationRefused | None = None
    failure: ConnectFailed | None = None
    for af, socktype, proto, _canonname, sockaddr in candidates:
        ip = str(sockaddr[0])
        try:
            check_destination_ip(ip)
        except DestinationRefused as exc:
            refusal = refusal or exc
            continue
        sock = socket.socket(af, socktype, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            failure = ConnectFailed(_host_and_port(ip, port), exc)
            continue
        return sock
    if failure is None:
        raise refusal or DestinationRefused(f"Refused: {host} resolved to no address.")
    raise failure
