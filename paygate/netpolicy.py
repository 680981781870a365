"""Where webhooks may be sent: the SSRF address policy, shared by configuration and connect time.

Stdlib only. The service checks a URL when a merchant configures it; the notifier checks every
address it is about to connect to (after DNS resolution, so a name that later resolves to an
internal address is still refused). Both use the same function, exported as
``paygate.webhook_address_allowed``.

Refused unless ``allow_private`` (``PAYGATE_ALLOW_PRIVATE_WEBHOOKS=true``, set by the tests and
``paygate up`` for local receivers): every address that is not globally routable (private,
loopback, link-local, shared/CGNAT, reserved, documentation, unspecified, the ranges of
``NOT_GLOBAL``) and multicast. IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4,
and the deprecated IPv4-compatible and IPv4-translated forms) are judged by that IPv4 address as
well. Link-local addresses (169.254.0.0/16, fe80::/10: where cloud metadata services live) and
the known metadata endpoints are refused even with the switch: no local receiver lives there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6 metadata
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wireserver (a public address)
        "192.0.0.192",  # Oracle Cloud
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, the site's own translator
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291); :: and ::1 excepted
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
TEREDO = ipaddress.ip_network("2001::/32")
# Not globally reachable (IANA special-purpose registries) although ``is_global`` says so on
# some Python versions (3.11 does for all of these): refused without the switch.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b:1::/48",  # local-use NAT64
        "fec0::/10",  # site-local (deprecated, RFC 3879), still routed inside some networks
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # segment routing SIDs (RFC 9602)
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
    )
)
# Refused even with the switch: metadata services answer on link-local addresses.
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
LOOPBACK_NAMES = ("localhost", "localhost.")
MAX_URL_LENGTH = 2048

Resolver = Callable[..., list]


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (and a translator or tunnel may reach)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64 or ip in IPV4_TRANSLATED or ip in LOCAL_NAT64:  # RFC 6052's /96 form
        return low32
    if ip in IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are themselves, not 0.0.0.x
        return low32
    return None


def _within(ip: IPAddress, networks: tuple) -> bool:
    return any(ip in network for network in networks)


def webhook_address_allowed(address: str | IPAddress, *, allow_private: bool = False) -> bool:
    """May a webhook connect to ``address`` (an IP literal; a zone suffix ``%eth0`` is ignored)?

    Anything that does not parse as an IP address is refused.
    """
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in TEREDO and not allow_private:
            return False  # a tunnel to an address we cannot see
        inner = _embedded_ipv4(ip)
        if inner is not None:  # judged by the IPv4 address (Pythons differ on these prefixes)
            if not allow_private and _within(ip, NOT_GLOBAL):
                return False
            return webhook_address_allowed(inner, allow_private=allow_private)
    if ip in METADATA_ADDRESSES or _within(ip, LINK_LOCAL):
        return False
    if ip.is_multicast:
        return False
    if allow_private:
        return True
    return ip.is_global and not _within(ip, NOT_GLOBAL)


def webhook_url_problem(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> str | None:
    """Why ``url`` cannot be a webhook target, or None when it can.

    The host is resolved now and every address it resolves to must be allowed. A name that does
    not resolve is accepted (DNS may be down for a moment): the notifier checks the address it
    actually connects to on every attempt.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    host = parts.hostname
    if not host:
        return "must include a host"
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        return _address_problem([str(literal)], allow_private)
    name = host.lower()
    if not allow_private and (name in LOOPBACK_NAMES or name.rstrip(".").endswith(".localhost")):
        return "must not point to a loopback host"
    try:
        infos = resolve(
            host, port or (443 if parts.scheme == "https" else 80), 0, socket.SOCK_STREAM
        )
    except (OSError, UnicodeError, ValueError):
        return None
    return _address_problem([info[4][0] for info in infos], allow_private)


def _address_problem(addresses: list[str], allow_private: bool) -> str | None:
    for address in addresses:
        if not webhook_address_allowed(address, allow_private=allow_private):
            return (
                f"resolves to {address}, a private, loopback, link-local or metadata address "
                "that webhooks may not reach"
            )
    return None
