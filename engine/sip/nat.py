"""How a PBX on the internet reaches us through NAT and firewalls, over IPv4 or IPv6.

- **The port range** (`PortRange`): a deployment may fix the UDP ports its SIP sockets take
  (AUTOCALL_SIP_PORTS), so that a tenant can allow-list them in the PBX's firewall; each user
  agent binds the first free port of it (`first_free`).
- **Our public address**: behind NAT the address the routing table gives is not the one the
  PBX sees. The deployment may say it (AUTOCALL_SIP_PUBLIC_ADDRESS, one address a family,
  `PublicAddresses`), which wins; otherwise the user agent learns it from the `received` and
  `rport` the PBX writes into the top Via of its answers to our REGISTER (RFC 3581 section 4,
  `learned`), as phones do, and registers again with it.
- **The family**: a user agent binds a socket of its PBX's family. An engine restricted to one
  family (its bind address is an IPv4 or an IPv6 address) says so in plain words at once
  (`WrongFamily`) when the PBX is of the other, instead of a call that gets no answer.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from engine.sip.message import Via

Address = tuple[str, int]
T = TypeVar("T")


class WrongFamily(OSError):
    """The PBX is IPv6 and this engine binds IPv4 only (or the other way round)."""


class PortsTaken(OSError):
    """Every port of the deployment's range is taken on this machine."""


def unbracket(host: str) -> str:
    """`[2001:db8::1]` -> `2001:db8::1` (what sockets and resolvers take); others as they are."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def bracket(host: str) -> str:
    """An IPv6 address as it stands in a URI or a Via (`[2001:db8::1]`); others as they are."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _words(family: socket.AddressFamily) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"


@dataclass(frozen=True)
class PortRange:
    """The UDP ports the SIP sockets of a deployment bind, first to last (inclusive)."""

    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> PortRange | None:
        """`5070-5199`, or one port `5070`; empty: None (any port the system gives).
        ValueError saying what is wrong."""
        text = text.strip()
        if not text:
            return None
        first, dash, last = text.partition("-")
        try:
            ports = cls(int(first), int(last) if dash else int(first))
        except ValueError:
            raise ValueError(f"{text!r} is not a port range like 5070-5199") from None
        if not 1 <= ports.first <= ports.last <= 65535:
            raise ValueError(f"{text!r} must be ports from 1 to 65535, the lower first")
        return ports

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1))

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


async def first_free(open_at: Callable[[int], Awaitable[T]], ports: PortRange | None) -> T:
    """`open_at(port)` on the first port of the range that is free (any port without a
    range); PortsTaken when every one is in use."""
    if ports is None:
        return await open_at(0)
    for port in ports:
        try:
            return await open_at(port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
    raise PortsTaken(
        errno.EADDRINUSE,
        f"every UDP port of the SIP port range {ports} is taken on this machine (one is "
        "needed per SIP account an engine dials through): widen AUTOCALL_SIP_PORTS or run "
        "fewer engines here",
    )


@dataclass(frozen=True)
class PublicAddresses:
    """The deployment's public addresses as PBXes see them: at most one a family."""

    addresses: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> PublicAddresses:
        """`203.0.113.7`, `2001:db8::7` (or bracketed), or both separated by a comma; empty:
        none (learned instead). ValueError saying what is wrong."""
        addresses: list[str] = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                address = ipaddress.ip_address(unbracket(part))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address") from None
            if any(ipaddress.ip_address(a).version == address.version for a in addresses):
                raise ValueError(f"give one address a family, not two IPv{address.version}")
            addresses.append(str(address))
        return cls(tuple(addresses))

    def towards(self, destination: str) -> str | None:
        """Our public address for a PBX at `destination`: the one of its family, if any."""
        family = family_of(destination)
        return next((a for a in self.addresses if family_of(a) == family), None)

    def __str__(self) -> str:
        return ", ".join(self.addresses)


#: No public address set: each user agent learns its own.
NONE_SET = PublicAddresses()


def bind_host(local_host: str, destination: str) -> str:
    """The address to bind for a PBX at `destination`: `local_host` when it is one (its
    family must be the PBX's: WrongFamily otherwise), else the wildcard of the PBX's family."""
    family = family_of(destination)
    if not local_host:
        return "::" if family == socket.AF_INET6 else "0.0.0.0"
    if family_of(local_host) != family:
        raise WrongFamily(
            errno.EAFNOSUPPORT,
            f"the PBX is at an {_words(family)} address ({destination}) and this engine uses "
            f"{_words(family_of(local_host))} only (its SIP sockets bind {local_host}: "
            "AUTOCALL_ENGINE_BIND); leave that setting empty to reach PBXes of both kinds",
        )
    return local_host


def pick(addresses: Sequence[Address], local_host: str) -> Address:
    """Of a name's addresses (in the resolver's order), the first one this engine can reach:
    any when it binds no address, else the first of its bind's family (WrongFamily when the
    name has none)."""
    if local_host:
        fitting = [a for a in addresses if family_of(a[0]) == family_of(local_host)]
        if not fitting:
            bind_host(local_host, addresses[0][0])  # raises, saying why
        addresses = fitting
    return addresses[0]


def no_route(destination: str, error: OSError) -> OSError:
    """A route-less PBX in words: most often an IPv6 PBX seen from a machine (or a Docker
    network) without IPv6. Other errors as they are."""
    unreachable = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EAFNOSUPPORT)
    if error.errno in unreachable and not isinstance(error, WrongFamily):
        family = _words(family_of(destination))
        return OSError(
            error.errno,
            f"this engine has no {family} route to the PBX at {destination} ({error.strerror}); "
            f"is {family} set up on the machine (and the container network) the engines run on?",
        )
    return error


def learned(via: Via | None, sent_port: int) -> Address | None:
    """Where the PBX saw our request come from, as written into the top Via of its answer:
    `received` (RFC 3261 section 18.2.1) and `rport` (RFC 3581 section 4; our own port when
    the PBX wrote no number); None when it wrote no `received`."""
    if via is None or not via.received:
        return None
    host = unbracket(via.received)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        return None  # not an address: nothing we can put into the SDP
    return host, via.rport or sent_port
