"""Where the service may connect on a tenant's word: in production, the public internet only.

A tenant names hosts that the service then talks to: its webhooks' receivers
(webapp/webhooks/delivery.py), its PBX or outbound proxy (webapp/settings). Unless the
deployment allows private addresses for them (AUTOCALL_WEBHOOK_ALLOW_PRIVATE,
AUTOCALL_SIP_ALLOW_PRIVATE; always in development and testing), they may not lead into the
deployment's own network: loopback, private (RFC 1918, CGNAT), link-local (cloud metadata at
169.254.169.254), multicast and reserved addresses are refused, and so is an IPv6 address that
leads to such an IPv4 one (IPv4-mapped, 6to4, NAT64).
"""

from __future__ import annotations

import ipaddress
import socket

#: NAT64's well-known prefix (RFC 6052): the IPv4 address is the last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: NAT64's local-use prefix (RFC 8215): where the IPv4 address sits is the network's choice,
#: and it is never global, so all of it is refused.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def is_public(address: str) -> bool:
    """Whether an IP address (text, IPv6 maybe with a zone) is on the public internet: a
    global unicast address. An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4,
    NAT64) is judged by the IPv4 address it leads to."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6:
        if ip in _NAT64_LOCAL or ip.is_site_local:
            return False
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            return is_public(str(carried))
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def resolve(host: str, port: int) -> list[tuple[str, int]]:
    """The UDP addresses a host name (or an IP address) stands for, in the order the system
    gives them (a connection takes the first); OSError when it does not resolve. An IPv6
    address may be written in brackets, as in a SIP URI."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return [info[4][:2] for info in infos]


def not_public(host: str, port: int) -> str | None:
    """The first address of `host` that is not public, or None: all are public, or the name
    does not resolve (then there is nothing to connect to, and whatever tries says so)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return None
    return next((address for address, _port in addresses if not is_public(address)), None)
