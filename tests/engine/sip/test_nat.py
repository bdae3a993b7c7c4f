"""NAT, firewalls and IPv6 (engine/sip/nat.py), through the user agent against SIPp.

SIPp plays a registrar that writes into its answers' Via where it saw our REGISTER come
from (tests/sipp/nat.xml), a PBX on ::1 (tests/sipp/pbx.xml), and a registrar that logs our
Contact (tests/sipp/register_unregister.xml). All on loopback, timers shortened.
"""

import asyncio
import errno

import pytest

from engine.sip.locate import Locator
from engine.sip.message import parse_via
from engine.sip.nat import (
    PortRange,
    PortsTaken,
    PublicAddresses,
    WrongFamily,
    bind_host,
    bracket,
    learned,
    no_route,
    pick,
    unbracket,
)
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent
from tests.engine.sip.test_ua import UNREGISTER_ANSWERED
from tests.sipp import free_udp_ports

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)
NUMBER = "+79161234567"


def test_the_address_the_pbx_sees_is_learned_registered_and_offered(pbx):
    """The PBX says our REGISTER came from 203.0.113.7:40000 (RFC 3581): we register again
    at once with that Contact, and every later request (the INVITE: Via, Contact, SDP c= and
    o=) carries it; the Contact withdrawn on the way out is that one too."""
    peer = pbx("nat.xml", calls=2, fill={"received": "203.0.113.7", "rport": "40000"})

    async def run():
        account = Account("127.0.0.1", peer.port, "dialer")
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
            before = ua.contact
            registration = await ua.register(expires=300)
            after = ua.contact
            attempt = await ua.place_call(f"sip:{NUMBER}@127.0.0.1:{peer.port}", "sip:101@x")
            return ua.port, before, registration, after, attempt

    port, before, registration, after, attempt = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert before == f"<sip:dialer@127.0.0.1:{port}>"
    assert after == "<sip:dialer@203.0.113.7:40000>"
    assert registration.state == "registered"
    assert [c.strip() for c in seen.logged("CONTACT")] == [
        f"<sip:dialer@127.0.0.1:{port}>",
        "<sip:dialer@203.0.113.7:40000>",
    ]
    assert [v.strip() for v in seen.logged("VIA")] == [f"127.0.0.1:{port}", "203.0.113.7:40000"]
    assert [w.strip() for w in seen.logged("WITHDRAWN")] == ["<sip:dialer@203.0.113.7:40000>"]
    assert [s.strip() for s in seen.logged("SDP")] == ["c=IN IP4 203.0.113.7"]
    assert seen.logged("ORIGIN")[0].strip().endswith("IN IP4 203.0.113.7")
    assert [v.strip() for v in seen.logged("INVITE-VIA")] == ["203.0.113.7:40000"]
    assert [c.strip() for c in seen.logged("INVITE-CONTACT")] == ["<sip:dialer@203.0.113.7:40000>"]
    assert attempt.outcome == "busy"


def test_a_public_address_set_for_the_deployment_wins_over_what_is_learned(pbx):
    peer = pbx(
        "register_unregister.xml", fill={"unregister_answer": UNREGISTER_ANSWERED}, timeout=10
    )

    async def run():
        account = Account("127.0.0.1", peer.port, "dialer", "secret")
        public = PublicAddresses.parse("198.51.100.9, 2001:db8::9")
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST, public=public) as ua:
            await ua.register()
            return ua.port, ua.contact, ua.media.address

    port, contact, media = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert (contact, media) == (f"<sip:dialer@198.51.100.9:{port}>", "198.51.100.9")
    assert [c.strip() for c in seen.logged("REGISTERED")] == [contact]


def test_register_call_and_transfer_with_an_ipv6_pbx_written_in_brackets(pbx):
    """`[::1]` as the PBX's host, no bind address given: the socket is IPv6, the URIs
    bracket the address, and the call is answered and transferred."""
    extra = ["-deadcall_wait", "0"]  # the unregistration (same Call-ID) is a call of its own
    peer = pbx("pbx.xml", host="::1", calls=3, fill={"ring_ms": 0}, timeout=15, extra=extra)

    async def run():
        account = Account("[::1]", peer.port, "dialer")
        async with UserAgent(account, timers=FAST) as ua:
            registration = await ua.register()
            attempt = await ua.place_call(f"sip:{NUMBER}1@[::1]:{peer.port}", "sip:101@[::1]")
            return ua.transport.local_address, ua.contact, registration, attempt

    bound, contact, registration, attempt = asyncio.run(run())
    seen = peer.wait()  # the REGISTER, the call, the unregistration
    assert seen.succeeded, seen.errors
    assert bound[0] == "::"
    assert contact.startswith("<sip:dialer@[::1]:")
    assert registration.state == "registered"
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert f"REGISTER sip:[::1]:{peer.port} SIP/2.0" in seen.messages
    assert "REFER-TO sip:101@[::1]" in seen.log


def test_an_outbound_proxy_written_as_a_bracketed_ipv6_address_and_port(pbx):
    from engine.formats import parse_host_port

    peer = pbx("transfer_ok.xml", host="::1")
    proxy = parse_host_port(f"[::1]:{peer.port}")

    async def run():
        account = Account("pbx.example.invalid", 5060, "dialer", outbound_proxy=proxy)
        async with UserAgent(account, timers=FAST) as ua:
            return await ua.place_call(f"sip:{NUMBER}@pbx.example.invalid", "sip:101@pbx")

    attempt = asyncio.run(run())
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


def test_an_engine_bound_to_ipv4_says_so_at_once_for_an_ipv6_pbx():
    async def run(local_host, host):
        async with UserAgent(Account(host, 5060, "dialer"), local_host=local_host, timers=FAST):
            pass

    with pytest.raises(WrongFamily) as ipv4_only:
        asyncio.run(asyncio.wait_for(run("0.0.0.0", "[::1]"), 2))
    assert str(ipv4_only.value) == (
        "[Errno 97] the PBX is at an IPv6 address (::1) and this engine uses IPv4 only (its "
        "SIP sockets bind 0.0.0.0: AUTOCALL_ENGINE_BIND); leave that setting empty to reach "
        "PBXes of both kinds"
    )
    with pytest.raises(WrongFamily, match="the PBX is at an IPv4 address"):
        asyncio.run(asyncio.wait_for(run("::1", "127.0.0.1"), 2))


def test_user_agents_take_the_first_free_ports_of_the_range_and_say_when_none_is_left():
    ports = free_udp_ports(2)

    async def run():
        account = Account("127.0.0.1", 5060, "dialer")
        agents = [UserAgent(account, local_host="127.0.0.1", ports=ports) for _ in range(3)]
        try:
            await agents[0].start()
            await agents[1].start()
            with pytest.raises(PortsTaken) as taken:
                await agents[2].start()
            return [agents[0].port, agents[1].port], str(taken.value)
        finally:
            for ua in agents[:2]:
                if hasattr(ua, "transport"):
                    await ua.close()

    bound, message = asyncio.run(run())
    assert bound == [ports.first, ports.last]
    assert message == (
        f"[Errno {errno.EADDRINUSE}] every UDP port of the SIP port range {ports} is taken on "
        "this machine (one is needed per SIP account an engine dials through): widen "
        "AUTOCALL_SIP_PORTS or run fewer engines here"
    )


# --- the pieces ------------------------------------------------------------------------------


def test_port_ranges_are_read_and_refused_in_words():
    assert PortRange.parse("5070-5199") == PortRange(5070, 5199)
    assert len(PortRange.parse(" 5070 ")) == 1
    assert PortRange.parse("") is None
    for bad in ("5199-5070", "0-10", "a-b", "5070-70000", "5070-"):
        with pytest.raises(ValueError):
            PortRange.parse(bad)


def test_public_addresses_are_one_a_family():
    both = PublicAddresses.parse("[2001:db8::7], 203.0.113.7")
    assert both.towards("192.0.2.1") == "203.0.113.7"
    assert both.towards("2001:db8::1") == "2001:db8::7"
    assert PublicAddresses.parse("203.0.113.7").towards("::1") is None
    for bad in ("example.com", "203.0.113.7,198.51.100.1", "203.0.113.7:5060"):
        with pytest.raises(ValueError):
            PublicAddresses.parse(bad)


def test_a_name_with_both_families_gives_the_address_the_bind_can_reach():
    addresses = [("2001:db8::1", 5060), ("192.0.2.1", 5060)]
    assert pick(addresses, "") == ("2001:db8::1", 5060)
    assert pick(addresses, "0.0.0.0") == ("192.0.2.1", 5060)
    assert pick(addresses, "::") == ("2001:db8::1", 5060)
    with pytest.raises(WrongFamily):
        pick(addresses[:1], "10.0.0.5")
    assert bind_host("", "2001:db8::1") == "::"
    assert bind_host("", "192.0.2.1") == "0.0.0.0"


def test_the_learned_address_is_received_with_rport_or_our_own_port():
    def via(text):
        return learned(parse_via(text), 5070)

    assert via("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=203.0.113.7;rport=40000") == (
        "203.0.113.7",
        40000,
    )
    assert via("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=203.0.113.7") == (
        "203.0.113.7",
        5070,
    )
    assert via("SIP/2.0/UDP [::1]:5070;received=[2001:DB8::7];rport=1") == ("2001:db8::7", 1)
    assert via("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;rport=40000") is None
    assert via("SIP/2.0/UDP 10.0.0.5:5070;received=somewhere") is None
    assert learned(None, 5070) is None


def test_brackets():
    assert bracket("2001:db8::1") == bracket("[2001:db8::1]") == "[2001:db8::1]"
    assert bracket("pbx.example.com") == "pbx.example.com"
    assert unbracket("[::1]") == "::1"
    assert Account("::1").host == "[::1]"


def test_a_missing_route_is_put_in_words_and_other_errors_are_left_alone():
    unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
    worded = no_route("2001:db8::1", unreachable)
    assert str(worded) == (
        "[Errno 101] this engine has no IPv6 route to the PBX at 2001:db8::1 (Network is "
        "unreachable); is IPv6 set up on the machine (and the container network) the engines "
        "run on?"
    )
    taken = OSError(errno.EADDRINUSE, "Address already in use")
    assert no_route("192.0.2.1", taken) is taken


def test_a_pbx_name_with_only_an_aaaa_record_is_reached_over_ipv6(pbx, dns_server):
    """A name whose DNS gives only an IPv6 address (dnsmasq's AAAA for pbx6.test, SRV
    records pointing at it): no bind address given, the socket is IPv6, and the call is
    answered and transferred; the URIs keep the name."""
    extra = ["-deadcall_wait", "0"]  # the unregistration (same Call-ID) is a call of its own
    peer = pbx("pbx.xml", host="::1", calls=3, fill={"ring_ms": 0}, timeout=15, extra=extra)
    dns = dns_server(
        f"--srv-host=_sip._udp.pbx6.test,box.pbx6.test,{peer.port},10,0",
        "--host-record=box.pbx6.test,::1",
    )

    async def run():
        account = Account("pbx6.test", 5060, "dialer")
        locator = Locator(["127.0.0.1"], port=dns.port, timeout=2)
        async with UserAgent(account, timers=FAST, locator=locator) as ua:
            registration = await ua.register()
            attempt = await ua.place_call(f"sip:{NUMBER}1@pbx6.test", "sip:101@pbx6.test")
            return ua.targets, ua.transport.local_address, registration, attempt

    targets, bound, registration, attempt = asyncio.run(run())
    assert targets == [("::1", peer.port)]
    assert bound[0] == "::"
    assert registration.state == "registered"
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert "REGISTER sip:pbx6.test:5060 SIP/2.0" in seen.messages
    assert "REFER-TO sip:101@pbx6.test" in seen.log
