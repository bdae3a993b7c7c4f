"""Where the service may connect on a tenant's word: in production, the public internet only.

A tenant names hosts that the service then talks to: its webhooks' receivers
(webapp/webhooks/delivery.py), its PBX or outbound proxy (webapp/settings). Unless the
deployment allows private addresses for them (AUTOCALL_WEBHOOK_ALLOW_PRIVATE,
AUTOCALL_SIP_ALLOW_PRIVATE; always in development and testing), they may not lead into the
deployment's own network: loopback, private (RFC 1918, CGNAT), link-local (cloud metadata at
169.254.169.254), multicast and reserved addresses are refused.
"""

from __future__ import annotations

import ipaddress
import socket


def is_public(address: str) -> bool:
    """Whether an IP address (text, IPv6 maybe with a zone) is on the public internet."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[tuple[str, int]]:
    """The UDP addresses a host name (or an IP address) stands for, in the order the system
    gives them (a connection takes the first); OSError when it does not resolve."""
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
