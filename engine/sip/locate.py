"""Locating the PBX in DNS as RFC 3263 section 4 says: NAPTR, then SRV, then A/AAAA.

The admin writes a name (or an address) and perhaps a port; `Locator.locate` turns it into the
ordered list of addresses to send to, the first one first and the others to fail over to
(the user agent's `targets`):

- a numeric address is used as is (with the port given, or the transport's default);
- a name with a port given: its A and AAAA records (section 4.2);
- a name alone: its NAPTR records name the SRV records of our transport (SIP+D2U for UDP,
  SIP+D2T for TCP, SIPS+D2T for TLS); without a NAPTR for it, the SRV name is built
  (`_sip._udp.NAME`, `_sip._tcp.NAME`, `_sips._tcp.NAME`); the SRV records are ordered by
  priority and, within one priority, by RFC 2782's weighted random choice, and each target's
  A/AAAA records give its addresses; without SRV records, the name's own A/AAAA records with
  the default port (5060, 5061 for TLS).

The queries go through dnspython's asyncio resolver (to the servers of /etc/resolv.conf, or
to the ones given: the tests run a DNS server on loopback). Answers are kept for their TTL,
at least `MIN_TTL` (a zero TTL must not send a query per call) and at most `MAX_TTL` (a
changed record is seen within minutes); "no such record" is kept `NEGATIVE_TTL`. What goes
wrong is a `DnsError` (an OSError, like a name getaddrinfo cannot resolve) worded for the
admin.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

Address = tuple[str, int]

#: The port of a target found without SRV (RFC 3261 section 19.1.2).
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
#: The NAPTR service of each transport (RFC 3263 section 4.1).
NAPTR_SERVICES = {"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T"}
#: The SRV name's prefix of each transport when no NAPTR names it (section 4.1).
SRV_PREFIXES = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}

#: Seconds an answer is kept at least, whatever its TTL: a zero TTL (or one that flaps to
#: zero) must not cost a DNS query for each call.
MIN_TTL = 5.0
#: Seconds an answer is kept at most, whatever its TTL: a PBX moved in DNS is followed
#: within minutes.
MAX_TTL = 300.0
#: Seconds "no such name" or "no such record" is kept: briefly, so a record just added is
#: soon seen, yet a name without NAPTR or SRV records is not asked again for each call.
NEGATIVE_TTL = 30.0
#: Seconds one lookup waits for the DNS server (each query, its retries included).
TIMEOUT = 5.0


class DnsError(OSError):
    """The PBX could not be located in DNS; the message is for the admin."""


class DnsTimeout(DnsError):
    """The DNS server did not answer in time (not kept in the cache: asked again next time)."""


@dataclass(frozen=True)
class Target:
    """One address to send to, and the name it came from (an SRV target, or the PBX's own
    name): what TLS checks the certificate against."""

    address: Address
    name: str


@dataclass(frozen=True)
class Location:
    """Where the PBX is: its targets in the order to try them, and until when (the
    locator's clock) the answers they came from are kept."""

    targets: tuple[Target, ...]
    until: float


#: A cached answer: until when, and the records (empty: no such record) or the error.
_Cached = tuple[float, list[object] | DnsError]
#: The cache's record type of what the system resolver said (`Locator.system_addresses`).
_SYSTEM = -1


class Locator:
    """Looks up SIP servers (RFC 3263) with a small cache of the answers.

    `nameservers` None: the system's resolver configuration (/etc/resolv.conf), read at the
    first lookup, and the names of /etc/hosts DNS does not know; else only the servers given
    are asked (`localhost` excepted: it never leaves the machine). `rng` chooses among SRV
    records of equal priority (seeded in tests); `clock` is the cache's clock."""

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        port: int = 53,
        timeout: float = TIMEOUT,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.nameservers = list(nameservers) if nameservers is not None else None
        self.port = port
        self.timeout = timeout
        self.rng = rng or random.Random()
        self.clock = clock
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._cache: dict[tuple[str, int], _Cached] = {}
        #: DNS queries sent so far (the cache answers the others).
        self.queries = 0

    async def locate(self, host: str, port: int | None = None, transport: str = "udp") -> Location:
        """The targets for `host` (a name, an address, or a bracketed IPv6 address) and
        `port` (None: none given, so DNS says) over `transport`; DnsError when there is none.
        """
        lookup = _Lookup(self, host)
        literal = _ip(host)
        if literal is not None:
            address = (literal, port or DEFAULT_PORTS[transport])
            return Location((Target(address, literal),), lookup.until)
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            # This machine itself (RFC 6761 section 6.3): never asked of DNS.
            targets = await self.system_addresses(host, port or DEFAULT_PORTS[transport])
            if not targets:
                raise DnsError(f"the PBX name {host} does not resolve on this machine")
            return Location(targets, lookup.until)
        if port is not None:
            return Location(await lookup.addresses(host, port), lookup.until)
        for srv_name in await lookup.srv_names(transport):
            records = await lookup.records(srv_name, dns.rdatatype.SRV, absent_if_failed=True)
            services = [r for r in records if isinstance(r, SRV) and r.target != dns.name.root]
            if services:
                return Location(await lookup.srv_targets(services), lookup.until)
        return Location(await lookup.addresses(host, DEFAULT_PORTS[transport]), lookup.until)

    def srv_order(self, services: list[SRV]) -> list[SRV]:
        """Lowest priority first; within a priority, RFC 2782's weighted random choice: a
        record is picked with a chance proportional to its weight (zero-weight records
        rarely: they are put first and win only a draw of 0)."""
        ordered: list[SRV] = []
        for priority in sorted({s.priority for s in services}):
            group = sorted(
                (s for s in services if s.priority == priority), key=lambda s: s.weight != 0
            )
            while group:
                draw = self.rng.randint(0, sum(s.weight for s in group))
                running = 0
                for index, srv in enumerate(group):
                    running += srv.weight
                    if running >= draw:
                        ordered.append(group.pop(index))
                        break
        return ordered

    async def system_addresses(self, name: str, port: int) -> tuple[Target, ...]:
        """`name`'s addresses as the system resolves it (getaddrinfo: /etc/hosts first, so
        `localhost` and the names a container is given), IPv4 first; empty when it does not.
        Kept like a DNS answer: `MIN_TTL` when found, `NEGATIVE_TTL` when not."""
        key = (name.lower().rstrip("."), _SYSTEM)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is None or cached[0] <= now:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    name, None, type=socket.SOCK_DGRAM
                )
            except OSError:
                infos = []
            found = sorted({(info[0], str(info[4][0])) for info in infos})  # AF_INET first
            addresses: list[object] = [address for _family, address in found]
            until = now + (MIN_TTL if addresses else NEGATIVE_TTL)
            cached = self._cache[key] = (until, addresses)
        addresses = cached[1] if isinstance(cached[1], list) else []
        return tuple(Target((str(address), port), name) for address in addresses)

    async def records(self, name: str, rdtype: dns.rdatatype.RdataType, host: str) -> _Cached:
        """The records of `name` and `rdtype` as the cache keeps them: (until when, the
        records or the error). `host` is the PBX's name as the admin wrote it, for the
        messages."""
        key = (name.lower().rstrip("."), rdtype)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is None or cached[0] <= now:
            cached = self._cache[key] = await self._query(name, rdtype, host, now)
        return cached

    async def _query(
        self, name: str, rdtype: dns.rdatatype.RdataType, host: str, now: float
    ) -> _Cached:
        resolver = self._resolver or self._make_resolver()
        self.queries += 1
        what = f"PBX name {host}" if name == host else f"name {name} (of the PBX {host})"
        negative = now + NEGATIVE_TTL
        try:
            answer = await resolver.resolve(
                name, rdtype, search=False, raise_on_no_answer=False, lifetime=self.timeout
            )
        except dns.resolver.NXDOMAIN:
            return negative, DnsError(f"the {what} does not resolve: NXDOMAIN")
        except dns.exception.Timeout:
            # Not kept: the next lookup asks again.
            raise DnsTimeout(
                f"no answer from the DNS server within {self.timeout:g} s (looking up the {what})"
            ) from None
        except dns.resolver.NoNameservers as error:
            return negative, DnsError(f"the DNS server could not look up the {what}: {error}")
        except dns.exception.DNSException as error:
            return negative, DnsError(f"the {what} cannot be looked up: {error}")
        if answer.rrset is None:
            return negative, []
        ttl = min(max(float(answer.rrset.ttl), MIN_TTL), MAX_TTL)
        return now + ttl, list(answer.rrset)

    def _make_resolver(self) -> dns.asyncresolver.Resolver:
        """dnspython's resolver, without its own cache (ours bounds the TTLs)."""
        if self.nameservers is None:
            try:
                resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
            except dns.resolver.NoResolverConfiguration as error:
                raise DnsError(f"no DNS server is configured on this machine: {error}") from None
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = list(self.nameservers)
        resolver.port = self.port
        resolver.cache = None
        self._resolver = resolver
        return resolver


class _Lookup:
    """One `Locator.locate`: the PBX's name for the messages, and until when the answers it
    used are kept (the earliest of their expiries)."""

    def __init__(self, locator: Locator, host: str):
        self.locator = locator
        self.host = host
        self.until = locator.clock() + MAX_TTL

    async def records(
        self, name: str, rdtype: dns.rdatatype.RdataType, absent_if_failed: bool = False
    ) -> list[Any]:
        """The records of `name` and `rdtype` (empty when there are none); DnsError when
        the name does not exist or the server fails, unless `absent_if_failed` (NAPTR and
        SRV records: most PBXes have none, and a name without them may well not exist)
        says to take that as no records. A timeout is a DnsTimeout in any case."""
        until, records = await self.locator.records(name, rdtype, self.host)
        self.until = min(self.until, until)
        if isinstance(records, DnsError):
            if absent_if_failed:
                return []
            raise DnsError(*records.args)  # a new one each time: a traceback of its own
        return records

    async def srv_names(self, transport: str) -> list[str]:
        """The SRV names to ask, in order: those the NAPTR records give for our transport
        (order, then preference: RFC 3403), else the one built from the transport."""
        records = await self.records(self.host, dns.rdatatype.NAPTR, absent_if_failed=True)
        wanted = NAPTR_SERVICES[transport]
        naptrs = sorted(
            (
                r
                for r in records
                if isinstance(r, NAPTR)
                and r.flags.decode().lower() == "s"
                and r.service.decode().upper() == wanted
            ),
            key=lambda r: (r.order, r.preference),
        )
        names = [r.replacement.to_text(omit_final_dot=True) for r in naptrs]
        return names or [f"{SRV_PREFIXES[transport]}.{self.host}"]

    async def srv_targets(self, services: list[SRV]) -> tuple[Target, ...]:
        """Each SRV record's addresses, the records in RFC 2782's order; a target that does
        not resolve is skipped, unless none does."""
        targets: list[Target] = []
        failures: list[str] = []
        for srv in self.locator.srv_order(services):
            name = srv.target.to_text(omit_final_dot=True)
            try:
                targets += await self.addresses(name, srv.port)
            except DnsTimeout:
                raise
            except DnsError:
                failures.append(name)
        if not targets:
            raise DnsError(
                f"the PBX name {self.host} has SRV records, but none of their targets "
                f"({', '.join(failures)}) has an address"
            )
        return tuple(targets)

    async def addresses(self, name: str, port: int) -> tuple[Target, ...]:
        """`name`'s A records, then its AAAA records, each with `port`. (IPv4 first: the
        engine's default bind is 0.0.0.0.)"""
        found: list[Target] = []
        errors: list[DnsError] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                records = await self.records(name, rdtype)
            except DnsTimeout:
                raise
            except DnsError as error:
                errors.append(error)
                continue
            found += [Target((r.to_text(), port), name) for r in records]
        if found:
            return tuple(found)
        # With the system's DNS servers, the system's other names too: /etc/hosts (only the
        # DNS servers given are asked otherwise, as in the tests).
        if self.locator.nameservers is None and (
            system := await self.locator.system_addresses(name, port)
        ):
            return system
        if errors:
            raise errors[0]
        what = f"PBX name {name}" if name == self.host else f"name {name} (of the PBX {self.host})"
        raise DnsError(f"the {what} has no address (no A or AAAA record)")


def _ip(host: str) -> str | None:
    """`host` as an IP address (brackets of an IPv6 literal removed), or None for a name."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
