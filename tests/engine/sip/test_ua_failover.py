"""The user agent finds its PBX by SRV records and fails over (RFC 3263 section 4.3): dnsmasq
serves the records (tests/dnsmasq.py), SIPp plays the PBX's servers (tests/sipp/pbx.xml), and
the first server is dead, silent or overloaded (503). Timers are shortened as in test_ua.py
(Timer B and F: 3.2 s)."""

import asyncio
import socket

from engine.outcomes import Detail, Outcome
from engine.sip import parse
from engine.sip.locate import MAX_TTL, NEGATIVE_TTL, Locator
from engine.sip.message import format_response
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)


def srv_records(first_port: int, second_port: int) -> list[str]:
    """pbx.test's two servers: `first` (priority 10) before `second` (priority 20)."""
    return [
        f"--srv-host=_sip._udp.pbx.test,first.pbx.test,{first_port},10,0",
        f"--srv-host=_sip._udp.pbx.test,second.pbx.test,{second_port},20,0",
        "--host-record=first.pbx.test,127.0.0.1",
        "--host-record=second.pbx.test,127.0.0.1",
    ]


def user_agent(dns) -> UserAgent:
    # The portal's default port: DNS says where the PBX is.
    account = Account("pbx.test", 5060, "dialer", "secret")
    locator = Locator(["127.0.0.1"], port=dns.port, timeout=2)
    return UserAgent(account, local_host="127.0.0.1", timers=FAST, locator=locator)


def test_registration_and_the_next_call_go_to_the_second_server_when_the_first_is_dead(
    pbx, dns_server
):
    first = pbx("pbx.xml", calls=2, fill={"ring_ms": 0})
    second = pbx("pbx.xml", calls=2, timeout=30, fill={"ring_ms": 0})
    dns = dns_server(*srv_records(first.port, second.port))
    first.stop()  # killed: nothing answers there any more

    async def run():
        async with user_agent(dns) as ua:
            assert ua.targets == [first.address, second.address]
            assert ua.destination == first.address
            registration = await ua.register()
            where = ua.destination
            attempt = await ua.place_call("sip:+79161234560@pbx.test", "sip:101@pbx.test")
            return registration, where, attempt

    registration, where, attempt = asyncio.run(run())
    assert registration.state == "registered"  # at once on the second, no backoff
    assert where == second.address
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    seen = second.wait()
    assert seen.succeeded, seen.errors  # the REGISTER and the call
    assert seen.logged("REFER-TO") == ["sip:101@pbx.test FOR sip:+79161234560"]


def test_a_call_without_any_answer_sends_the_next_call_to_the_next_server(pbx, dns_server):
    second = pbx("pbx.xml", calls=1, timeout=30, fill={"ring_ms": 0})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.settimeout(0)
        dns = dns_server(*srv_records(silent.getsockname()[1], second.port))

        async def run():
            async with user_agent(dns) as ua:
                lost = await ua.place_call("sip:+79161234560@pbx.test", "sip:101@pbx.test")
                answered = await ua.place_call("sip:+79161234561@pbx.test", "sip:101@pbx.test")
                return lost, answered

        lost, answered = asyncio.run(run())
        heard = parse(silent.recv(65535))
    assert heard.method == "INVITE"  # the first call went to the first server...
    assert (lost.outcome, lost.detail) == (Outcome.UNAVAILABLE, Detail.NO_RESPONSE)
    assert answered.outcome == "answered"  # ...the next one to the second
    seen = second.wait()
    assert seen.succeeded, seen.errors


def test_a_503_to_register_moves_on_to_the_next_server_at_once(pbx, dns_server):
    second = pbx("pbx.xml", calls=1, timeout=30, fill={"ring_ms": 0})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.settimeout(5)
        dns = dns_server(*srv_records(busy.getsockname()[1], second.port))

        async def run():
            async with user_agent(dns) as ua:
                registering = asyncio.ensure_future(ua.register())
                loop = asyncio.get_running_loop()
                data, source = await loop.run_in_executor(None, busy.recvfrom, 65535)
                overloaded = format_response(parse(data), 503, "Service Unavailable")
                busy.sendto(overloaded, source)
                return await registering, ua.destination

        registration, where = asyncio.run(run())
    assert (registration.state, registration.code, where) == ("registered", 200, second.address)
    seen = second.wait()
    assert seen.succeeded, seen.errors


def test_a_pbx_name_that_does_not_resolve_is_told_plainly(dns_server):
    dns = dns_server()

    async def run():
        ua = user_agent(dns)
        try:
            await ua.start()
        except OSError as error:  # what the dialer reports as "pbx_unreachable"
            return str(error)
        await ua.close()
        return None

    assert asyncio.run(run()) == "the PBX name pbx.test does not resolve: NXDOMAIN"


def test_a_call_going_keeps_its_server_when_new_requests_move_on(pbx, dns_server):
    """The user agent moves on (here told directly, as a timed-out REGISTER would) while a
    call rings on the first server: that call is answered and transferred there to its end,
    and the next call goes to the second."""
    first = pbx("pbx.xml", calls=1, timeout=30, fill={"ring_ms": 1000})
    second = pbx("pbx.xml", calls=1, timeout=30, fill={"ring_ms": 0})
    dns = dns_server(*srv_records(first.port, second.port))

    async def run():
        async with user_agent(dns) as ua:
            ringing = asyncio.ensure_future(
                ua.place_call("sip:+79161234560@pbx.test", "sip:101@pbx.test")
            )
            await asyncio.sleep(0.3)
            ua.unreachable(first.address)
            assert ua.destination == second.address
            going = await ringing
            following = await ua.place_call("sip:+79161234561@pbx.test", "sip:102@pbx.test")
            return going, following

    going, following = asyncio.run(run())
    assert (going.outcome, going.transfer_result) == ("answered", "succeeded")
    assert (following.outcome, following.transfer_result) == ("answered", "succeeded")
    at_first, at_second = first.wait(), second.wait()
    assert at_first.succeeded, at_first.errors  # INVITE, ACK, REFER, NOTIFYs, BYE: all there
    assert at_first.logged("REFER-TO") == ["sip:101@pbx.test FOR sip:+79161234560"]
    assert at_second.logged("REFER-TO") == ["sip:102@pbx.test FOR sip:+79161234561"]


def test_the_servers_found_before_serve_while_dns_is_down(pbx, dns_server):
    """DNS answered at the start; when its answers expire and the DNS server is gone, the
    servers found before still serve; when they stop answering too, the registration says
    both."""
    # A refresh is a new call for SIPp on the same Call-ID: no dead-call wait swallows it.
    peer = pbx("pbx.xml", calls=2, timeout=30, fill={"ring_ms": 0}, extra=["-deadcall_wait", "0"])
    dns = dns_server(
        f"--srv-host=_sip._udp.pbx.test,only.pbx.test,{peer.port},10,0",
        "--host-record=only.pbx.test,127.0.0.1",
    )
    clock = Clock()
    account = Account("pbx.test", 5060, "dialer", "secret")
    locator = Locator(["127.0.0.1"], port=dns.port, timeout=0.5, clock=clock)

    async def run():
        ua = UserAgent(account, local_host="127.0.0.1", timers=FAST, locator=locator)
        async with ua:
            first = (await ua.register()).state  # (the next REGISTER updates the object)
            dns.stop()
            clock.now += MAX_TTL + 1
            stale = (await ua.register()).state
            peer.stop()
            clock.now += NEGATIVE_TTL + 1
            lost = await ua.register()
            return first, stale, lost

    first, stale, lost = asyncio.run(run())
    assert (first, stale) == ("registered", "registered")
    assert (lost.state, lost.detail) == (
        "failed",
        "the PBX did not answer; no answer from the DNS server within 0.5 s "
        "(looking up the PBX name pbx.test)",
    )


class Clock:
    """The DNS cache's clock, moved on by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
