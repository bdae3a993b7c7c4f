"""The user agent against a real SIP peer: SIPp plays the tenant's PBX (tests/sipp/*.xml).

Each test checks what our user agent concluded and what SIPp saw. Timers are shortened
(T1 = 50 ms, so Timer B is 3.2 s) to keep the suite quick; the logic is the RFC's.
"""

import asyncio
import contextlib
import hashlib
import re
import socket
import time

import pytest

from engine.outcomes import Outcome
from engine.sip import parse, sdp
from engine.sip.message import format_response
from engine.sip.registration import UNREGISTER_WAIT
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent, classify
from tests.sipp import SIPp

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)
NUMBER = "+79161234567"


def user_agent(peer: SIPp, **account) -> UserAgent:
    account = {"username": "dialer", "password": "secret", **account}
    return UserAgent(
        Account("127.0.0.1", peer.port, **account), local_host="127.0.0.1", timers=FAST
    )


def call(peer: SIPp, refer_to="sip:101@127.0.0.1", ua_options=None, **options):
    async def run():
        async with user_agent(peer, **(ua_options or {})) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            return await ua.place_call(target, refer_to, **options)

    return asyncio.run(run())


def test_answered_and_transferred_then_the_pbx_hangs_up(pbx):
    peer = pbx("transfer_ok.xml")
    attempt = call(peer, refer_to="sip:101@127.0.0.1:5060")
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert seen.logged("REFER-TO") == ["sip:101@127.0.0.1:5060"]
    assert (attempt.outcome, attempt.transfer_result, attempt.detail) == (
        "answered",
        "succeeded",
        None,
    )
    assert (attempt.sip_code, attempt.transfer_sip_code, attempt.transfer_sip_reason) == (
        200,
        200,
        "OK",
    )
    times = [
        attempt.invite_at,
        attempt.ringing_at,
        attempt.answer_at,
        attempt.refer_at,
        attempt.transfer_result_at,
        attempt.end_at,
    ]
    assert times == sorted(times) and None not in times
    assert attempt.refer_at - attempt.answer_at < 0.5  # REFER follows the answer at once


def test_we_leave_with_bye_when_the_pbx_does_not(pbx):
    peer = pbx("transfer_ok_we_leave.xml")
    attempt = call(peer, bye_grace=0.2)
    seen = peer.wait()
    assert seen.succeeded, seen.errors  # SIPp received our BYE and answered it
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


@pytest.mark.parametrize(
    "status", ["405 Method Not Allowed", "403 Forbidden", "501 Not Implemented"]
)
def test_refer_refused_is_a_technical_error_and_we_leave(pbx, status):
    peer = pbx("refer_refused.xml", fill={"refer_status": status})
    attempt = call(peer)
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
        "technical_error",
        "refer_refused",
        "failed",
    )
    assert f"{attempt.transfer_sip_code} {attempt.transfer_sip_reason}" == status


@pytest.mark.parametrize("sipfrag", ["SIP/2.0 486 Busy Here", "SIP/2.0 603 Declined"])
def test_transfer_failing_in_the_notify(pbx, sipfrag):
    peer = pbx("transfer_declined.xml", fill={"sipfrag": sipfrag})
    attempt = call(peer)
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.detail, attempt.transfer_result) == (
        "technical_error",
        "transfer_failed",
        "failed",
    )
    assert f"SIP/2.0 {attempt.transfer_sip_code} {attempt.transfer_sip_reason}" == sipfrag


def test_no_final_notify_ends_with_our_transfer_timer(pbx):
    peer = pbx("no_final_notify.xml")
    attempt = call(peer, transfer_timeout=0.6)
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.detail) == ("technical_error", "transfer_timeout")


def test_a_late_final_notify_is_answered_and_reported(pbx):
    """Our wait ends first (timed out, BYE), the operator answers 0.3 s later: the REFER's
    subscription outlives our BYE, its final NOTIFY gets 200 and its result is told."""
    peer = pbx(
        "transfer_late_notify.xml",
        fill={"late_after": 300, "sipfrag": "SIP/2.0 200 OK", "late_answer": 200},
    )
    told = []

    async def run():
        async with user_agent(peer) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            attempt = await ua.place_call(
                target, "sip:101@127.0.0.1", transfer_timeout=0.6, on_late_result=told.append
            )
            ended = time.monotonic()
            while not told and time.monotonic() - ended < 3:
                await asyncio.sleep(0.02)
            return attempt, dict(ua._late)

    attempt, late = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert (attempt.outcome, attempt.detail) == ("technical_error", "transfer_timeout")
    (result,) = told
    assert (result.call_id, result.result, result.sip_code) == (attempt.call_id, "succeeded", 200)
    assert result.at >= attempt.end_at
    assert late == {}  # the subscription is over with its final NOTIFY


def test_a_late_notify_saying_failure_is_reported_as_failed(pbx):
    peer = pbx(
        "transfer_late_notify.xml",
        fill={"late_after": 100, "sipfrag": "SIP/2.0 486 Busy Here", "late_answer": 200},
    )
    told = []

    async def run():
        async with user_agent(peer) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            await ua.place_call(
                target, "sip:101@127.0.0.1", transfer_timeout=0.6, on_late_result=told.append
            )
            ended = time.monotonic()
            while not told and time.monotonic() - ended < 3:
                await asyncio.sleep(0.02)

    asyncio.run(run())
    assert peer.wait().succeeded
    assert [(r.result, r.sip_code, r.sip_reason) for r in told] == [("failed", 486, "Busy Here")]


def test_a_notify_after_the_late_window_gets_481(pbx):
    """The late window (here 0.5 s) is over when the NOTIFY comes (1 s after our BYE): 481,
    and nothing is told."""
    peer = pbx(
        "transfer_late_notify.xml",
        fill={"late_after": 1000, "sipfrag": "SIP/2.0 200 OK", "late_answer": 481},
    )
    told = []

    async def run():
        ua = UserAgent(
            Account("127.0.0.1", peer.port, username="dialer", password="secret"),
            local_host="127.0.0.1",
            timers=FAST,
            late_window=0.5,
        )
        async with ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            await ua.place_call(
                target, "sip:101@127.0.0.1", transfer_timeout=0.6, on_late_result=told.append
            )
            await asyncio.to_thread(peer.wait)

    asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors  # SIPp got the 481 it expected
    assert told == []


def test_no_free_operator_at_answer(pbx):
    peer = pbx("answer_then_bye.xml")

    async def nobody_free():
        return None

    attempt = call(peer, refer_to=nobody_free)
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.detail, attempt.refer_to) == (
        "technical_error",
        "no_free_operator",
        None,
    )


def test_a_customer_hanging_up_while_the_operator_is_picked(pbx):
    """The PBX's BYE arrives while the picker runs: it is answered at once, and told to the
    call once the REFER is out (the picker's choice stands: REFER, then customer_hung_up)."""
    peer = pbx("hang_up_while_picking.xml")

    async def run():
        async with user_agent(peer) as ua:

            async def pick_after_the_bye():
                for _ in range(500):  # the 200 OK, then the PBX's BYE
                    if ua.transport.stats.received >= 2:
                        break
                    await asyncio.sleep(0.01)
                return "sip:101@127.0.0.1"

            return await ua.place_call(f"sip:{NUMBER}@127.0.0.1:{peer.port}", pick_after_the_bye)

    attempt = asyncio.run(run())
    assert peer.wait().succeeded  # 200 for its BYE, then our REFER (answered 481)
    assert (attempt.outcome, attempt.detail, attempt.transfer_result, attempt.refer_to) == (
        "technical_error",
        "customer_hung_up",
        "failed",
        "sip:101@127.0.0.1",
    )
    assert attempt.refer_at is not None


@pytest.mark.parametrize(
    ("scenario", "final", "outcome"),
    [
        ("final.xml", "486 Busy Here", "busy"),
        ("final.xml", "600 Busy Everywhere", "busy"),
        ("final.xml", "404 Not Found", "unavailable"),
        ("final.xml", "480 Temporarily Unavailable", "unavailable"),
        ("final.xml", "503 Service Unavailable", "unavailable"),
        ("final.xml", "604 Does Not Exist Anywhere", "unavailable"),
        ("final.xml", "408 Request Timeout", "no_answer"),
        ("final.xml", "500 Server Internal Error", "technical_error"),
        ("ring_then_final.xml", "480 Temporarily Unavailable", "no_answer"),
        ("ring_then_final.xml", "486 Busy Here", "busy"),
    ],
)
def test_final_responses_map_to_outcomes(pbx, scenario, final, outcome):
    peer = pbx(scenario, fill={"final": final})
    attempt = call(peer)
    assert peer.wait().succeeded  # and SIPp got our ACK
    assert attempt.outcome == outcome
    assert f"{attempt.sip_code} {attempt.sip_reason}" == final
    assert attempt.answer_at is None and attempt.refer_at is None


def test_ring_timeout_cancels_the_call(pbx):
    peer = pbx("ring_no_answer.xml")
    attempt = call(peer, ring_timeout=0.4)
    seen = peer.wait()
    assert seen.succeeded  # SIPp got our CANCEL and the ACK of its 487
    assert (attempt.outcome, attempt.detail, attempt.sip_code) == ("no_answer", "ring_timeout", 487)
    assert 0.4 <= attempt.end_at - attempt.invite_at < 2
    cancel = next(m for m in seen.messages.split("\n\n") if m.lstrip().startswith("CANCEL"))
    assert re.search(r"CSeq: 1 CANCEL", cancel)


def test_no_response_at_all_is_unavailable_after_timer_b(pbx):
    peer = pbx("no_response.xml", fill={"silence": "5000"})
    started = time.monotonic()
    attempt = call(peer)
    assert (attempt.outcome, attempt.detail, attempt.sip_code) == (
        "unavailable",
        "no_response",
        None,
    )
    assert 64 * FAST.t1 <= time.monotonic() - started < 64 * FAST.t1 + 2
    seen = peer.wait()
    # Timer A: the INVITE went out again and again (T1, 2T1, 4T1, ... within Timer B).
    assert seen.messages.count("INVITE sip:") >= 5


def digest(algorithm: str, *parts: str) -> str:
    h = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5
    return h(":".join(parts).encode()).hexdigest()


@pytest.mark.parametrize(
    ("status", "header", "algorithm"),
    [
        ("401 Unauthorized", "WWW-Authenticate", "MD5"),
        ("407 Proxy Authentication Required", "Proxy-Authenticate", "SHA-256"),
        ("401 Unauthorized", "WWW-Authenticate", "SHA-256"),
    ],
)
def test_digest_challenge_is_answered(pbx, status, header, algorithm):
    peer = pbx(
        "auth_challenge.xml",
        fill={
            "auth_status": status,
            "auth_header": header,
            "algorithm": algorithm,
            "nonce": "4f2a9c",
        },
    )
    attempt = call(peer)
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert attempt.outcome == "busy"  # the authenticated INVITE got 486
    assert len(seen.logged("AUTHORIZATION")) == 1  # SIPp found the header in the new INVITE
    reply = "Proxy-Authorization" if header.startswith("Proxy") else "Authorization"
    (authorization,) = re.findall(rf"^{reply}: (.*)$", seen.messages, re.M)
    assert seen.logged("CSEQ") == ["2"]  # the new INVITE has the next CSeq
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', authorization))
    assert fields["username"] == "dialer" and fields["realm"] == "autocall-test"
    assert fields["algorithm"] == algorithm and fields["qop"] == "auth"
    uri = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
    assert fields["uri"] == uri
    ha1 = digest(algorithm, "dialer", "autocall-test", "secret")
    ha2 = digest(algorithm, "INVITE", uri)
    expected = digest(algorithm, ha1, "4f2a9c", fields["nc"], fields["cnonce"], "auth", ha2)
    assert fields["response"] == expected


def test_wrong_password_is_answered_once_then_reported(pbx):
    peer = pbx("auth_rejected.xml")
    attempt = call(peer, ua_options={"password": "wrong"})
    assert peer.wait().succeeded  # exactly one authenticated try, then nothing
    assert (attempt.outcome, attempt.detail, attempt.sip_code) == (
        "technical_error",
        "auth_failed",
        401,
    )


def test_a_stale_nonce_is_answered_again(pbx):
    peer = pbx("auth_stale.xml")
    attempt = call(peer)
    seen = peer.wait()
    assert seen.succeeded
    assert attempt.outcome == "busy"
    assert 'nonce="n2"' in seen.messages.split("stale=true", 1)[1]  # answered with the new nonce


def test_a_challenge_for_another_realm_gets_no_credentials(pbx):
    peer = pbx("auth_rejected.xml", timeout=3)
    attempt = call(peer, ua_options={"realm": "our-pbx"})
    seen = peer.wait()
    assert (attempt.outcome, attempt.detail) == ("technical_error", "auth_failed")
    assert "Authorization:" not in seen.messages  # SIPp waited in vain for our answer


def test_calls_complete_through_ten_percent_loss(pbx):
    calls = 8
    peer = pbx("transfer_lossy.xml", calls=calls, timeout=60)

    async def run():
        async with user_agent(peer) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            attempts = [
                await ua.place_call(
                    target,
                    "sip:101@127.0.0.1",
                    bye_grace=5.0,
                    transfer_timeout=8.0,
                    ring_timeout=10.0,
                )
                for _ in range(calls)
            ]
            # Stay up, as a running engine would, answering SIPp's retransmissions of the
            # messages whose answers it dropped, until SIPp has ended all its calls (its
            # retransmissions can go on for 0.5 + 1 + 2 + 4 s after a last lost answer).
            for _ in range(150):
                if peer.process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            return attempts

    attempts = asyncio.run(run())
    seen = peer.wait()
    assert [(a.outcome, a.transfer_result, a.detail) for a in attempts] == [
        ("answered", "succeeded", None)
    ] * calls
    assert seen.succeeded, seen.errors


def test_hostile_source_cannot_touch_a_live_call(pbx):
    peer = pbx("transfer_ok.xml")

    async def run():
        async with user_agent(peer) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            task = asyncio.ensure_future(ua.place_call(target, "sip:101@127.0.0.1"))
            while not ua._calls or next(iter(ua._calls.values())).dialog is None:
                await asyncio.sleep(0.005)
            dialog = next(iter(ua._calls.values())).dialog
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hostile:
                hostile.bind(("127.0.0.1", 0))
                hostile.setblocking(False)
                for method in ("BYE", "REFER"):
                    message = sip_request(
                        method,
                        f"sip:dialer@127.0.0.1:{ua.port}",
                        hostile.getsockname()[1],
                        from_tag=dialog.remote_tag,
                        to_tag=dialog.local_tag,
                        call_id=dialog.call_id,
                        extra="Refer-To: <sip:attacker@evil>\r\n",
                    )
                    hostile.sendto(message, ("127.0.0.1", ua.port))
                attempt = await task
                await asyncio.sleep(0.1)
                with pytest.raises(BlockingIOError):
                    hostile.recv(2048)  # nothing was answered
            return attempt, ua.transport.stats.foreign

    attempt, dropped = asyncio.run(run())
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert dropped == 2


def test_registration_with_digest(pbx):
    peer = pbx(
        "register.xml",
        fill={"nonce": "abc123", "username": "dialer", "password": "secret", "expires": "120"},
    )

    async def run():
        async with user_agent(peer) as ua:
            return await ua.register(expires=300)

    registration = asyncio.run(run())
    assert peer.wait().succeeded  # SIPp's own verifyauth accepted our digest
    assert (registration.state, registration.code, registration.expires) == ("registered", 200, 120)


def test_registration_with_a_wrong_password_is_reported_in_words(pbx):
    peer = pbx(
        "register.xml",
        fill={"nonce": "abc123", "username": "dialer", "password": "secret", "expires": "120"},
    )

    async def run():
        async with user_agent(peer, password="wrong") as ua:
            return await ua.register()

    registration = asyncio.run(run())
    peer.wait()
    assert (registration.state, registration.code) == ("failed", 403)
    assert registration.detail == "the PBX refused this account (403)"


def test_registration_is_refreshed_before_it_expires(pbx):
    # A refresh keeps the Call-ID (RFC 3261 section 10.2.4); SIPp must forget the first
    # registration's "call" at once to take the second as new.
    fill = {"nonce": "n", "username": "dialer", "password": "secret", "expires": "1"}
    peer = pbx("register.xml", calls=2, extra=["-deadcall_wait", "0"], fill=fill)

    async def run():
        async with user_agent(peer) as ua:
            ua.keep_registered(expires=1)
            await asyncio.sleep(1.6)
            return ua.registration

    registration = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors  # two registrations, each verified
    assert registration.state == "registered"


def test_registration_reports_a_silent_pbx(tmp_path):
    async def run():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            account = Account("127.0.0.1", silent.getsockname()[1], "dialer", "secret")
            async with UserAgent(account, local_host="127.0.0.1", timers=Timers(t1=0.02)) as ua:
                return await ua.register()

    registration = asyncio.run(run())
    assert (registration.state, registration.detail) == ("failed", "the PBX did not answer")


def test_a_bare_expires_on_the_registered_contact_is_no_number():
    """A 2xx whose Contact has `;expires` without a value: the Expires header counts (the
    keeper's refreshes once ended on it)."""

    async def run():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registrar:
            registrar.bind(("127.0.0.1", 0))
            registrar.settimeout(2)
            account = Account("127.0.0.1", registrar.getsockname()[1], "dialer", "secret")
            async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
                registering = asyncio.ensure_future(ua.register())
                loop = asyncio.get_running_loop()
                data, source = await loop.run_in_executor(None, registrar.recvfrom, 4096)
                contact = ("Contact", "<sip:dialer@127.0.0.1>;expires")
                registrar.sendto(
                    format_response(
                        parse(data), 200, "OK", [contact, ("Expires", "60")], to_tag="r1"
                    ),
                    source,
                )
                return await registering

    registration = asyncio.run(run())
    assert (registration.state, registration.code, registration.expires) == ("registered", 200, 60)


def test_requests_outside_our_calls_get_the_right_answers():
    """A PBX (here a plain UDP socket) sends what a UA may receive out of the blue."""

    async def run():
        pbx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pbx.bind(("127.0.0.1", 0))
        pbx.settimeout(2)
        account = Account("127.0.0.1", pbx.getsockname()[1], "dialer", "secret")
        answers = {}
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
            cases = [
                ("OPTIONS", ""),
                ("REFER", "Refer-To: <sip:x@y>\r\n"),
                ("BYE", ""),
                ("NOTIFY", "Event: refer\r\n"),
                ("INVITE", ""),
                ("MESSAGE", ""),
                ("BROKEN", "Max-Forwards: 999\r\n"),
            ]
            for case, extra in cases:
                method = "OPTIONS" if case == "BROKEN" else case
                message = sip_request(
                    method,
                    "sip:dialer@127.0.0.1",
                    pbx.getsockname()[1],
                    call_id=f"unsolicited-{case}",
                    extra=extra,
                )
                pbx.sendto(message, ("127.0.0.1", ua.port))
                data = await asyncio.get_running_loop().run_in_executor(None, pbx.recv, 4096)
                answers[case] = parse(data)
        pbx.close()
        return answers

    answers = asyncio.run(run())
    assert {m: r.status for m, r in answers.items()} == {
        "OPTIONS": 200,
        "REFER": 403,
        "BYE": 481,
        "NOTIFY": 481,
        "INVITE": 403,
        "MESSAGE": 405,
        "BROKEN": 400,
    }
    assert "REFER" in answers["OPTIONS"].get("Allow")
    assert "Max-Forwards" in answers["BROKEN"].get("Warning")


def sip_request(method, uri, port, *, call_id, from_tag="p1", to_tag=None, extra=""):
    """A request as a PBX (or an impostor) on 127.0.0.1:port would send it."""
    to = "<sip:dialer@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{len(call_id)}\r\n"
        f"From: <sip:pbx@127.0.0.1>;tag={from_tag}\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 900 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def test_everything_goes_through_the_outbound_proxy(pbx):
    peer = pbx("transfer_ok.xml")  # SIPp plays the proxy; the PBX's name needs no DNS here

    async def run():
        account = Account(
            "pbx.example.invalid", 5060, "dialer", "secret", outbound_proxy=("127.0.0.1", peer.port)
        )
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
            return await ua.place_call(f"sip:{NUMBER}@pbx.example.invalid", "sip:101@pbx")

    attempt = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded
    assert f"INVITE sip:{NUMBER}@pbx.example.invalid SIP/2.0" in seen.messages
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


def test_a_call_over_ipv6(pbx):
    peer = pbx("transfer_ok.xml", host="::1")

    async def run():
        account = Account("::1", peer.port, "dialer", "secret")
        async with UserAgent(account, local_host="::1", timers=FAST) as ua:
            assert ua.contact.startswith("<sip:dialer@[::1]:")
            return await ua.place_call(f"sip:{NUMBER}@[::1]:{peer.port}", "sip:101@[::1]")

    attempt = asyncio.run(run())
    assert peer.wait().succeeded
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


def test_classify():
    assert classify(486, rang=False) is Outcome.BUSY
    assert classify(480, rang=True) is Outcome.NO_ANSWER
    assert classify(480, rang=False) is Outcome.UNAVAILABLE
    assert classify(487, rang=True) is Outcome.NO_ANSWER
    assert classify(415, rang=True) is Outcome.TECHNICAL_ERROR


def test_a_challenged_refer_is_sent_again_with_credentials():
    """A PBX (here a plain UDP socket) that asks the REFER for digest credentials."""

    async def run():
        loop = asyncio.get_running_loop()
        pbx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pbx.bind(("127.0.0.1", 0))
        pbx.setblocking(False)
        port = pbx.getsockname()[1]

        async def recv(method):
            while True:
                data, source = await asyncio.wait_for(loop.sock_recvfrom(pbx, 65536), 5)
                msg = parse(data)
                if getattr(msg, "method", None) == method:
                    return msg, source

        def answer(msg, status, extra=""):
            head = (
                "".join(f"Via: {v}\r\n" for v in msg.lines("via"))
                + f"From: {msg.get('from')}\r\nTo: {msg.get('to')}"
                + ("" if msg.to_tag else ";tag=pbx1")
                + f"\r\nCall-ID: {msg.call_id}\r\nCSeq: {msg.get('cseq')}\r\n"
            )
            return f"SIP/2.0 {status}\r\n{head}{extra}Content-Length: 0\r\n\r\n".encode()

        account = Account("127.0.0.1", port, "dialer", "secret")
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{port}"
            task = asyncio.ensure_future(ua.place_call(target, "sip:101@127.0.0.1", bye_grace=0.2))
            invite, source = await recv("INVITE")
            pbx.sendto(answer(invite, "200 OK", f"Contact: <sip:pbx@127.0.0.1:{port}>\r\n"), source)
            await recv("ACK")
            first, _ = await recv("REFER")
            challenge = 'WWW-Authenticate: Digest realm="pbx", nonce="n1", algorithm=MD5\r\n'
            pbx.sendto(answer(first, "401 Unauthorized", challenge), source)
            second, _ = await recv("REFER")
            pbx.sendto(answer(second, "202 Accepted"), source)
            notify = (
                f"NOTIFY sip:dialer@127.0.0.1:{ua.port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKn1\r\n"
                f"From: {second.get('to')}\r\nTo: {second.get('from')}\r\n"
                f"Call-ID: {second.call_id}\r\nCSeq: 1 NOTIFY\r\nEvent: refer\r\n"
                "Subscription-State: terminated;reason=noresource\r\n"
                "Content-Type: message/sipfrag;version=2.0\r\nContent-Length: 16\r\n\r\n"
                "SIP/2.0 200 OK\r\n"
            ).encode()
            pbx.sendto(notify, source)
            bye, _ = await recv("BYE")  # we leave: this PBX does not end our leg
            pbx.sendto(answer(bye, "200 OK"), source)
            attempt = await task
        pbx.close()
        return first, second, attempt

    first, second, attempt = asyncio.run(run())
    assert first.get("Authorization") is None
    authorization = second.get("Authorization")
    assert authorization.startswith("Digest ") and 'realm="pbx"' in authorization
    assert 'uri="sip:pbx@127.0.0.1:' in authorization
    assert second.cseq.number == first.cseq.number + 1 and second.branch != first.branch
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")


# --- re-INVITEs inside our calls (RFC 3264) ---------------------------------------------------


def sdp_offer(direction="sendrecv", formats="0 8 101", extra="a=rtpmap:101 telephone-event/8000"):
    """A re-INVITE's tail in a SIPp scenario: its SDP offer, SIPp filling in address and
    port."""
    return (
        "Content-Type: application/sdp\nContent-Length: [len]\n\nv=0\n"
        "o=pbx 1 2 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n"
        f"m=audio [media_port] RTP/AVP {formats}\n{extra}\na={direction}"
    )


NO_SDP = "Content-Length: 0\n"
ANSWER_IN_ACK = sdp_offer("sendrecv", "0", "a=rtpmap:0 PCMU/8000")


def our_sdp(seen, cseq):
    """The SDP of our 200 to the PBX's request with this CSeq, read back from SIPp's trace
    (messages apart between its dashed lines)."""
    (message,) = [
        m
        for m in re.split(r"\n-{20,} [^\n]*\n[^\n]*\n\n", seen.messages)
        if m.startswith("SIP/2.0 200") and f"CSeq: {cseq}\n" in m
    ]
    return sdp.parse(message.split("\n\n", 1)[1].encode())  # the trace's lines end in LF


@pytest.mark.parametrize(
    ("offer_name", "offer", "direction", "bump", "resume_bump"),
    [
        ("a=sendonly (hold)", sdp_offer("sendonly"), "recvonly", 1, 2),
        ("a=inactive", sdp_offer("inactive"), "inactive", 1, 2),
        ("a=recvonly", sdp_offer("recvonly"), "sendonly", 1, 2),
        ("PCMA and a codec not ours", sdp_offer(formats="18 8"), "sendrecv", 1, 2),
        ("the session unchanged", sdp_offer(), "sendrecv", 0, 0),
        ("no SDP: our offer wanted", NO_SDP, "sendrecv", 0, 0),
    ],
)
def test_a_reinvite_is_answered_from_its_offer(
    pbx, offer_name, offer, direction, bump, resume_bump
):
    """SIPp checks our 200's direction and o= version itself (a failed check fails its call);
    here the whole answer is read back from what SIPp received."""
    fill = {
        "offer_name": offer_name,
        "offer": offer,
        "direction": direction,
        "bump": bump,
        "resume_bump": resume_bump,
        "ack": ANSWER_IN_ACK if offer is NO_SDP else "Content-Length: 0\n",
    }
    peer = pbx("reinvite.xml", fill=fill)
    attempt = call(peer, transfer_timeout=3)
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    (offered,) = seen.logged("OFFERED")
    held, resumed = our_sdp(seen, "201 INVITE"), our_sdp(seen, "202 INVITE")
    assert (held.version, resumed.version) == (int(offered) + bump, int(offered) + resume_bump)
    (audio,) = held.media
    assert audio.direction == direction and audio.address == "127.0.0.1"
    formats = {"PCMA and a codec not ours": ("8",)}.get(offer_name, ("0", "8", "101"))
    assert audio.formats == formats
    assert resumed.media[0].direction == "sendrecv" and resumed.media[0].port == audio.port


@pytest.mark.parametrize(
    ("offer_name", "offer", "status", "expect"),
    [
        (
            "only a codec not ours",
            sdp_offer(formats="96", extra="a=rtpmap:96 opus/48000/2"),
            488,
            "Warning: 305 autocall .no stream we can take",
        ),
        (
            "SDP with a broken m= line",
            sdp_offer(formats=""),
            488,
            "Warning: 399 autocall .line 6: m= needs a media, a port",
        ),
        (
            "a body that is not SDP",
            "Content-Type: text/plain\nContent-Length: [len]\n\nhold, please",
            415,
            "Accept: application/sdp",
        ),
    ],
)
def test_a_reinvite_we_cannot_take_is_refused_and_the_session_stays(
    pbx, offer_name, offer, status, expect
):
    fill = {"offer_name": offer_name, "offer": offer, "status": status, "expect": expect}
    peer = pbx("reinvite_refused.xml", fill=fill)
    attempt = call(peer, transfer_timeout=3)
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    (offered,) = seen.logged("OFFERED")
    assert our_sdp(seen, "202 INVITE").version == int(offered)


# --- unregistering as the user agent closes ---------------------------------------------------

UNREGISTER_ANSWERED = """
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="autocall-test", nonce="n2", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="unregister_valid" username="dialer" password="secret"/>
      <ereg regexp="^ *0 *$" search_in="hdr" header="Expires:" check_it="true" assign_to="zero"/>
    </action>
  </recv>
  <nop hide="true" test="unregister_valid" next="withdrawn"/>
  <send><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <nop next="end"/>
  <label id="withdrawn"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


@pytest.mark.parametrize("how", ["register", "keep_registered"])
def test_closing_unregisters_with_the_challenge_answered(pbx, how):
    """`autocall test-call --register` registers once; the engine keeps registered: either
    way closing withdraws the binding (SIPp checks Expires: 0 and the digest, twice)."""
    peer = pbx(
        "register_unregister.xml", fill={"unregister_answer": UNREGISTER_ANSWERED}, timeout=10
    )

    async def run():
        ua = user_agent(peer)
        await ua.start()
        if how == "register":
            registered = await ua.register()
        else:
            ua.keep_registered()
            while ua.registration.state != "registered":
                await asyncio.sleep(0.01)
            registered = ua.registration
        started = time.monotonic()
        await ua.close()
        return registered, ua.registration, time.monotonic() - started

    registered, unregistered, took = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert (registered.state, registered.expires) == ("registered", 300)
    assert (unregistered.state, unregistered.code, unregistered.detail) == (
        "unregistered",
        200,
        "unregistered",
    )
    (contact,) = seen.logged("REGISTERED")
    (withdrawn,) = seen.logged("WITHDRAWN")
    withdrawn_contact, expires = withdrawn.split(" EXPIRES ")
    assert (withdrawn_contact.strip(), expires.strip()) == (contact.strip(), "0")
    register_cseqs = re.findall(r"^CSeq: (\d+) REGISTER$", seen.messages, re.M)
    assert (
        len(set(register_cseqs)) == 4
        and len(set(re.findall(r"^Call-ID: .*", seen.messages, re.M))) == 1
    )
    assert took < 1


def test_a_pbx_that_does_not_answer_the_unregistration_does_not_hold_up_closing(pbx):
    """Default timers (Timer F = 32 s): closing still ends after UNREGISTER_WAIT."""
    peer = pbx("register_unregister.xml", fill={"unregister_answer": ""}, timeout=10)

    async def run():
        account = Account("127.0.0.1", peer.port, "dialer", "secret")
        ua = UserAgent(account, local_host="127.0.0.1")
        await ua.start()
        registered = await ua.register()
        started = time.monotonic()
        await asyncio.wait_for(ua.close(), UNREGISTER_WAIT + 5)
        return registered, ua.registration, time.monotonic() - started

    registered, unregistered, took = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors  # it received the unregistration
    assert registered.state == "registered"
    assert (unregistered.state, unregistered.detail) == (
        "unregistered",
        "unregistered without the PBX's answer",
    )
    assert UNREGISTER_WAIT - 0.1 <= took < UNREGISTER_WAIT + 0.5


def test_closing_sends_nothing_when_nothing_is_registered():
    """Never registered, or refused: no REGISTER at close (a plain socket plays the PBX)."""

    async def run():
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registrar:
            registrar.bind(("127.0.0.1", 0))
            registrar.setblocking(False)
            account = Account("127.0.0.1", registrar.getsockname()[1], "dialer", "secret")
            async with UserAgent(account, local_host="127.0.0.1", timers=FAST):
                pass
            ua = UserAgent(account, local_host="127.0.0.1", timers=FAST)
            await ua.start()
            registering = asyncio.ensure_future(ua.register())
            data, source = await asyncio.wait_for(loop.sock_recvfrom(registrar, 4096), 2)
            registrar.sendto(format_response(parse(data), 403, "Forbidden", to_tag="r1"), source)
            refused = await registering
            started = time.monotonic()
            await ua.close()
            took = time.monotonic() - started
            await asyncio.sleep(0.2)
            with pytest.raises(BlockingIOError):
                registrar.recv(4096)
            return refused, took

    refused, took = asyncio.run(run())
    assert refused.code == 403 and took < 0.1


def test_a_customer_hanging_up_while_held_for_an_operator_ends_the_wait(pbx):
    """The picker holds the customer for an operator (engine/dialer.py); the PBX's BYE half a
    second in is told to `on_hang_up` at once, the picker stops waiting and returns None, and
    the call ends with neither REFER nor BYE from us: abandoned (`no_free_operator`)."""
    peer = pbx("hang_up_while_held.xml")

    async def run():
        gone = asyncio.Event()
        waited = []

        async def hold_for_nobody():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await gone.wait()
            waited.append(gone.is_set())
            return None

        async with user_agent(peer) as ua:
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            attempt = await ua.place_call(target, hold_for_nobody, on_hang_up=gone.set)
        return attempt, waited

    attempt, waited = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert waited == [True]  # woken by the hang-up, not by its own timeout
    assert (attempt.outcome, attempt.detail, attempt.refer_to, attempt.refer_at) == (
        "technical_error",
        "no_free_operator",
        None,
        None,
    )
