"""Locating the PBX in DNS (engine/sip/locate.py) against a real DNS server: dnsmasq on
127.0.0.1 serves the records (tests/dnsmasq.py) and logs each query it answers."""

import asyncio
import random
import socket
import time
from collections import Counter

import pytest

from engine.sip.locate import MAX_TTL, MIN_TTL, NEGATIVE_TTL, DnsError, Locator
from tests.dnsmasq import DnsServer  # the `dns_server` fixture's (conftest.py)

A, B, C, D = "127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"


class Clock:
    """The cache's clock, moved on by the test (DNS's TTLs are minutes)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def locator(server: DnsServer, **options) -> Locator:
    return Locator(["127.0.0.1"], port=server.port, timeout=2, **options)


def addresses(location) -> list[tuple[str, int]]:
    return [target.address for target in location.targets]


def logged(server: DnsServer, count: int) -> list[tuple[str, str]]:
    """The server's queries once `count` are in its log (it writes them a moment later)."""
    deadline = time.monotonic() + 5
    while len(server.queries()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.queries()


def test_an_address_is_used_as_is_without_dns(dns_server):
    server = dns_server()
    finder = locator(server)

    async def run():
        return [
            addresses(await finder.locate("127.0.0.1")),
            addresses(await finder.locate("[::1]", 5080)),
            addresses(await finder.locate("::1", None, "tls")),
        ]

    assert asyncio.run(run()) == [[("127.0.0.1", 5060)], [("::1", 5080)], [("::1", 5061)]]
    assert finder.queries == 0 and server.queries() == []


def test_localhost_is_this_machine_without_dns(dns_server):
    server = dns_server()
    finder = locator(server)
    found = addresses(asyncio.run(finder.locate("localhost", 5070)))
    assert found[0] == ("127.0.0.1", 5070)
    assert finder.queries == 0 and server.queries() == []


def test_a_port_given_means_only_a_and_aaaa(dns_server):
    server = dns_server(
        "--srv-host=_sip._udp.pbx.test,srv.pbx.test,5099,10,0",
        f"--host-record=pbx.test,{A},::1",
    )
    found = addresses(asyncio.run(locator(server).locate("pbx.test", 5070)))
    assert found == [(A, 5070), ("::1", 5070)]  # IPv4 first
    assert logged(server, 2) == [("A", "pbx.test"), ("AAAA", "pbx.test")]


def test_without_naptr_and_srv_the_name_has_the_default_port(dns_server):
    server = dns_server(f"--host-record=pbx.test,{A}")
    finder = locator(server)

    async def run():
        return [addresses(await finder.locate("pbx.test", None, t)) for t in ("udp", "tls")]

    assert asyncio.run(run()) == [[(A, 5060)], [(A, 5061)]]
    assert logged(server, 5)[:4] == [
        ("NAPTR", "pbx.test"),
        ("SRV", "_sip._udp.pbx.test"),
        ("A", "pbx.test"),
        ("AAAA", "pbx.test"),
    ]
    assert server.queries()[4:] == [("SRV", "_sips._tcp.pbx.test")]  # the rest was kept


def test_naptr_names_the_srv_records_of_our_transport(dns_server):
    server = dns_server(
        "--naptr-record=pbx.test,10,50,s,SIP+D2T,,_sip._tcp.pbx.test",
        "--naptr-record=pbx.test,20,50,s,SIP+D2U,,_sip._udp.elsewhere.test",
        "--naptr-record=pbx.test,30,50,s,SIPS+D2T,,_sips._tcp.pbx.test",
        # Not named by the NAPTR records: never used for UDP.
        "--srv-host=_sip._udp.pbx.test,wrong.pbx.test,5099,10,0",
        "--srv-host=_sip._udp.elsewhere.test,u.pbx.test,5071,10,0",
        "--srv-host=_sip._tcp.pbx.test,t.pbx.test,5072,10,0",
        "--srv-host=_sips._tcp.pbx.test,s.pbx.test,5073,10,0",
        f"--host-record=wrong.pbx.test,{D}",
        f"--host-record=u.pbx.test,{A}",
        f"--host-record=t.pbx.test,{B}",
        f"--host-record=s.pbx.test,{C}",
    )
    finder = locator(server)

    async def run():
        return {t: await finder.locate("pbx.test", None, t) for t in ("udp", "tcp", "tls")}

    found = asyncio.run(run())
    assert {t: addresses(location) for t, location in found.items()} == {
        "udp": [(A, 5071)],
        "tcp": [(B, 5072)],
        "tls": [(C, 5073)],
    }
    assert found["tls"].targets[0].name == "s.pbx.test"  # what TLS checks the certificate for
    assert ("SRV", "_sip._udp.pbx.test") not in logged(server, 10)


def test_srv_priorities_then_weights_order_the_targets(dns_server):
    """Priority 10 holds three targets weighted 60/30/10, priority 20 one: over 1,000 look-ups
    (the choice seeded) each of the first three leads about as often as its weight says,
    and the fourth always comes last."""
    server = dns_server(
        "--srv-host=_sip._udp.pbx.test,a.pbx.test,5071,10,60",
        "--srv-host=_sip._udp.pbx.test,b.pbx.test,5072,10,30",
        "--srv-host=_sip._udp.pbx.test,c.pbx.test,5073,10,10",
        "--srv-host=_sip._udp.pbx.test,d.pbx.test,5074,20,100",
        f"--host-record=a.pbx.test,{A}",
        f"--host-record=b.pbx.test,{B}",
        f"--host-record=c.pbx.test,{C}",
        f"--host-record=d.pbx.test,{D}",
    )
    finder = locator(server, rng=random.Random(3263))

    async def run():
        return [addresses(await finder.locate("pbx.test")) for _ in range(1000)]

    orders = asyncio.run(run())
    assert all(order[-1] == (D, 5074) for order in orders)
    assert all(sorted(order[:3]) == [(A, 5071), (B, 5072), (C, 5073)] for order in orders)
    first = Counter(order[0][0] for order in orders)
    assert 520 <= first[A] <= 680 and 230 <= first[B] <= 370 and 50 <= first[C] <= 150
    assert finder.queries == 2 + 4 * 2  # NAPTR, SRV, each target's A and AAAA: once


def test_a_target_that_does_not_resolve_is_skipped(dns_server):
    server = dns_server(
        "--srv-host=_sip._udp.pbx.test,gone.pbx.test,5071,10,0",
        "--srv-host=_sip._udp.pbx.test,b.pbx.test,5072,20,0",
        f"--host-record=b.pbx.test,{B}",
    )
    assert addresses(asyncio.run(locator(server).locate("pbx.test"))) == [(B, 5072)]


@pytest.mark.parametrize(
    ("ttl", "kept"), [(0, MIN_TTL), (60, 60), (3600, MAX_TTL)], ids=["zero", "60s", "an-hour"]
)
def test_answers_are_kept_for_their_ttl_within_bounds(dns_server, ttl, kept):
    """With a port given, only A and AAAA are asked: both answer, and are kept their TTL
    (at least MIN_TTL, at most MAX_TTL)."""
    server = dns_server(f"--host-record=pbx.test,{A},::1", ttl=ttl)
    clock = Clock()
    finder = locator(server, clock=clock)

    async def run():
        first = await finder.locate("pbx.test", 5070)
        clock.now += kept - 1
        await finder.locate("pbx.test", 5070)  # from the cache: no query
        asked = finder.queries
        clock.now += 2
        await finder.locate("pbx.test", 5070)  # expired: asked again
        return first, asked

    first, asked = asyncio.run(run())
    assert asked == 2  # A, AAAA
    assert first.until == 1000.0 + kept  # until when the location holds
    assert finder.queries == 4
    assert len(logged(server, 4)) == 4  # the server saw the same


def test_no_such_record_is_kept_briefly(dns_server):
    """A name without NAPTR and SRV records: their absence is kept NEGATIVE_TTL seconds,
    and the location holds no longer than that."""
    server = dns_server(f"--host-record=pbx.test,{A},::1")
    clock = Clock()
    finder = locator(server, clock=clock)

    async def run():
        first = await finder.locate("pbx.test")
        clock.now += NEGATIVE_TTL - 1
        await finder.locate("pbx.test")
        asked = finder.queries
        clock.now += 2
        await finder.locate("pbx.test")
        return first, asked

    first, asked = asyncio.run(run())
    assert (first.until, asked) == (1000.0 + NEGATIVE_TTL, 4)
    assert finder.queries == 6  # NAPTR and SRV again; A and AAAA still kept (60 s)


def test_a_name_that_does_not_exist_is_told_plainly_and_kept_briefly(dns_server):
    server = dns_server()
    clock = Clock()
    finder = locator(server, clock=clock)

    async def run():
        errors = []
        for step in (0, 1, NEGATIVE_TTL):
            clock.now += step
            with pytest.raises(DnsError) as raised:
                await finder.locate("pbx.example.test")
            errors.append((str(raised.value), finder.queries))
        return errors

    message = "the PBX name pbx.example.test does not resolve: NXDOMAIN"
    assert asyncio.run(run()) == [(message, 4), (message, 4), (message, 8)]
    assert isinstance(DnsError(message), OSError)  # what the dialer's start catches


def test_srv_records_pointing_nowhere_are_told_plainly(dns_server):
    server = dns_server("--srv-host=_sip._udp.pbx.test,gone.pbx.test,5071,10,0")
    with pytest.raises(DnsError) as raised:
        asyncio.run(locator(server).locate("pbx.test"))
    assert str(raised.value) == (
        "the PBX name pbx.test has SRV records, but none of their targets (gone.pbx.test) "
        "has an address"
    )


def test_a_name_without_an_address_is_told_plainly(dns_server):
    server = dns_server("--naptr-record=pbx.test,10,50,s,SIP+D2T,,_sip._tcp.pbx.test")
    with pytest.raises(DnsError) as raised:
        asyncio.run(locator(server).locate("pbx.test"))
    assert str(raised.value) == "the PBX name pbx.test has no address (no A or AAAA record)"


def test_a_dns_server_that_does_not_answer_is_told_plainly_and_asked_again():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        finder = Locator(["127.0.0.1"], port=silent.getsockname()[1], timeout=0.3)

        async def run():
            messages = []
            for _ in range(2):
                with pytest.raises(DnsError) as raised:
                    await finder.locate("pbx.test")
                messages.append(str(raised.value))
            return messages

        messages = asyncio.run(run())
    assert (
        messages
        == ["no answer from the DNS server within 0.3 s (looking up the PBX name pbx.test)"] * 2
    )
    assert finder.queries == 2  # a timeout is not kept
