"""The transaction layer against a plain UDP socket playing the PBX (RFC 3261 section 17).

Timers are short (T1 = 20 ms) to keep these quick; the assertions count messages, with room
for a busy machine, and never time anything.
"""

import asyncio
import contextlib
import gc
import os
import socket
import weakref

import pytest

from engine.sip import Response, _untracked, parse, transaction
from engine.sip.message import format_request, format_response
from engine.sip.transaction import (
    TimerQueues,
    Timers,
    TransactionLayer,
    new_branch,
    token_hex,
)
from engine.sip.transport import Transport

FAST = Timers(t1=0.02, t2=0.04, t4=0.1)


class Peer:
    """The other side: a plain non-blocking UDP socket on 127.0.0.1."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()

    async def recv(self, timeout: float = 2.0) -> tuple[bytes, tuple]:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recvfrom(self.sock, 65536), timeout)

    def pending(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536))
            except BlockingIOError:
                return out

    def close(self):
        self.sock.close()


class Side:
    """Our side: a transport and a transaction layer; the requests it gets, by arrival."""

    def __init__(self, timers: Timers):
        self.timers = timers
        self.requests = []

    async def __aenter__(self):
        self.transport = await Transport.open(self._on_message, "127.0.0.1")
        self.layer = TransactionLayer(self.transport, self.timers)
        self.address = self.transport.local_address
        return self

    async def __aexit__(self, *exc):
        self.layer.close()
        self.transport.close()

    def _on_message(self, msg, source):
        if isinstance(msg, Response):
            self.layer.receive_response(msg)
            return
        tx = self.layer.receive_request(msg, source)
        if tx is not None:
            self.requests.append((msg, tx))

    def send(self, method: str, peer: Peer, on_response=None, on_timeout=None):
        branch = new_branch()
        headers = [
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.address[1]};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", "<sip:dialer@127.0.0.1>;tag=ours"),
            ("To", "<sip:pbx@127.0.0.1>"),
            ("Call-ID", f"{new_branch()}@test"),
            ("CSeq", f"1 {method}"),
        ]
        raw = format_request(method, f"sip:pbx@127.0.0.1:{peer.address[1]}", headers)
        return self.layer.send_request(
            method,
            branch,
            raw,
            peer.address,
            on_response or (lambda tx, r: None),
            on_timeout or (lambda tx: None),
        )


def answer(data: bytes, status: int, reason: str = "OK", to_tag: str = "theirs") -> bytes:
    return format_response(parse(data), status, reason, to_tag=to_tag)


def run(coroutine):
    return asyncio.run(coroutine)


def test_invite_without_answer_is_sent_again_doubling_until_timer_b():
    async def go():
        peer = Peer()
        timed_out = asyncio.get_running_loop().create_future()
        async with Side(FAST) as side:
            tx = side.send("INVITE", peer, on_timeout=timed_out.set_result)
            assert await timed_out is tx
            sent = peer.pending()
            left = dict(side.layer.client)
        peer.close()
        return sent, left, side.layer.retransmissions

    sent, left, retransmissions = run(go())
    # Timer A: at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1 within Timer B (64 T1); a busy machine
    # may run the last ones late, never early.
    assert 5 <= len(sent) <= 7
    assert len(set(sent)) == 1 and sent[0].startswith(b"INVITE ")
    assert retransmissions == len(sent) - 1
    assert left == {}  # Timer B ends the transaction


def test_non_invite_retransmissions_are_capped_at_t2():
    async def go():
        peer = Peer()
        timed_out = asyncio.get_running_loop().create_future()
        async with Side(FAST) as side:
            side.send("REFER", peer, on_timeout=timed_out.set_result)
            await timed_out
            return peer.pending()

    sent = run(go())
    # Timer E: T1, 2T1, then T2 (2 T1 here) each time until Timer F at 64 T1: about 33
    # sends; doubling without the cap would make 7.
    assert len(sent) >= 15


def test_a_provisional_stops_timer_a_and_the_final_response_is_acked_again_for_each_copy():
    async def go():
        peer = Peer()
        responses = []
        async with Side(FAST) as side:
            side.send("INVITE", peer, on_response=lambda tx, r: responses.append(r.status))
            invite, source = await peer.recv()
            peer.sock.sendto(answer(invite, 180, "Ringing"), source)
            await asyncio.sleep(10 * FAST.t1)  # Timer A would have resent it 3 times
            again = peer.pending()
            busy = answer(invite, 486, "Busy Here")
            peer.sock.sendto(busy, source)
            ack, _ = await peer.recv()
            peer.sock.sendto(busy, source)  # the ACK was lost, say: the 486 comes again
            ack_again, _ = await peer.recv()
            await asyncio.sleep(5 * FAST.t1)
            lingering = side.layer.lingering[(parse(invite).branch, "INVITE")]
            return responses, again, ack, ack_again, peer.pending(), lingering

    responses, again, ack, ack_again, after, lingering = run(go())
    assert again == []
    assert responses == [180, 486]  # the copy of the 486 is not the user agent's business
    assert ack == ack_again and ack.startswith(b"ACK ")
    assert parse(ack).to_tag == "theirs" and parse(ack).cseq == (1, "ACK")
    assert after == []
    assert type(lingering) is tuple  # Timer D: kept as plain values


def test_a_2xx_goes_to_the_user_agent_until_it_gives_its_ack_then_copies_get_that_ack():
    async def go():
        peer = Peer()
        seen = []
        async with Side(FAST) as side:
            tx = side.send("INVITE", peer, on_response=lambda tx, r: seen.append(r.status))
            invite, source = await peer.recv()
            ok = answer(invite, 200)
            peer.sock.sendto(ok, source)
            peer.sock.sendto(ok, source)
            await asyncio.sleep(3 * FAST.t1)
            tx.accept(b"ACK sip:pbx@127.0.0.1 SIP/2.0\r\n\r\n")
            peer.sock.sendto(ok, source)
            ack, _ = await peer.recv()
            return seen, ack, peer.pending()

    seen, ack, after = run(go())
    assert seen == [200, 200]  # RFC 6026: the Accepted state passes 2xx copies on
    assert ack.startswith(b"ACK ") and after == []


def test_a_final_response_to_a_non_invite_is_delivered_once():
    async def go():
        peer = Peer()
        seen = []
        async with Side(FAST) as side:
            side.send("BYE", peer, on_response=lambda tx, r: seen.append(r.status))
            bye, source = await peer.recv()
            for _ in range(3):
                peer.sock.sendto(answer(bye, 200), source)
            await asyncio.sleep(10 * FAST.t1)
            return seen, peer.pending()

    seen, after = run(go())
    assert seen == [200]
    assert after == []  # no retransmission once answered


def test_a_finished_transaction_lets_go_of_the_user_agent():
    """Lingering transactions must not keep calls alive (nor make work for the collector)."""

    class Call:
        def on_response(self, tx, response):
            pass

    async def go():
        peer = Peer()
        async with Side(FAST) as side:
            call = Call()
            alive = weakref.ref(call)
            tx = side.send("REFER", peer, on_response=call.on_response)
            del call, tx
            refer, source = await peer.recv()
            peer.sock.sendto(answer(refer, 202, "Accepted"), source)
            await asyncio.sleep(2 * FAST.t1)
            lingering = list(side.layer.lingering.items())
            # Untracked from the start, not only once a collection has looked at them, so
            # that the dicts holding them are not walked by the collector either; without
            # the compiled helper (AUTOCALL_NO_EXTENSIONS=1) the collector's first look does it.
            if transaction.untracked is not _untracked.untracked:
                gc.collect()
            tracked = [gc.is_tracked(item) for entry in lingering for item in entry]
            tracked += [gc.is_tracked(side.layer.lingering), side.layer.client]
            return alive(), lingering, tracked, len(side.layer.queues)

    call, lingering, tracked, timers = run(go())
    assert call is None
    assert len(lingering) == 1 and type(lingering[0][1]) is tuple
    assert tracked == [False, False, False, {}]
    assert timers == 1  # Timer K; E and F were taken out with the 202


def test_a_retransmitted_request_gets_the_same_answer_until_timer_j():
    async def go():
        peer = Peer()
        async with Side(FAST) as side:
            notify = (
                f"NOTIFY sip:dialer@127.0.0.1:{side.address[1]} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKnotify1\r\n"
                "From: <sip:pbx@127.0.0.1>;tag=p\r\nTo: <sip:dialer@127.0.0.1>;tag=d\r\n"
                "Call-ID: n1\r\nCSeq: 5 NOTIFY\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            peer.sock.sendto(notify, side.address)
            await asyncio.sleep(FAST.t1)
            request, tx = side.requests[0]
            tx.respond(format_response(request, 200, "OK"))
            first, _ = await peer.recv()
            peer.sock.sendto(notify, side.address)  # our 200 was lost, say
            second, _ = await peer.recv()
            new_before_timer_j = len(side.requests)
            await asyncio.sleep(64 * FAST.t1 + 0.3)  # Timer J is over: a new transaction
            peer.sock.sendto(notify, side.address)
            await asyncio.sleep(5 * FAST.t1)
            return first, second, new_before_timer_j, len(side.requests), peer.pending()

    first, second, before, after, extra = run(go())
    assert first == second and first.startswith(b"SIP/2.0 200 OK")
    assert (before, after) == (1, 2)
    assert extra == []  # the new one is the user agent's to answer


def test_a_2xx_to_a_reinvite_is_resent_until_the_ack():
    async def go():
        peer = Peer()
        async with Side(FAST) as side:
            invite = (
                f"INVITE sip:dialer@127.0.0.1:{side.address[1]} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKreinvite\r\n"
                "From: <sip:pbx@127.0.0.1>;tag=p\r\nTo: <sip:dialer@127.0.0.1>;tag=d\r\n"
                "Call-ID: r1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            peer.sock.sendto(invite, side.address)
            await asyncio.sleep(FAST.t1)
            request, tx = side.requests[0]
            tx.respond(format_response(request, 200, "OK"), reliable_2xx=True)
            copies = [(await peer.recv())[0] for _ in range(3)]
            # The ACK of a 2xx is a transaction of its own: a new branch (section 13.2.2.4).
            peer.sock.sendto(
                invite.replace(b"INVITE", b"ACK").replace(b"reinvite", b"ack1"), side.address
            )
            await asyncio.sleep(3 * FAST.t1)
            peer.pending()
            await asyncio.sleep(6 * FAST.t2)
            return copies, peer.pending(), side.layer.unacked

    copies, after_ack, unacked = run(go())
    assert len(set(copies)) == 1 and copies[0].startswith(b"SIP/2.0 200 OK")
    assert after_ack == [] and unacked == {}


def test_timer_queues_run_each_timer_once_in_order_and_never_early():
    async def go():
        loop = asyncio.get_running_loop()
        queues = TimerQueues(loop)
        fired = []

        def handler(key, due):
            fired.append((key, due, loop.time()))

        start = loop.time()
        for i in range(5):
            queues.add(0.05, handler, ("late", i))
            queues.add(0.01, handler, ("early", i))
        await asyncio.sleep(0.2)
        queues.close()
        return start, fired

    start, fired = run(go())
    assert [key for key, _, _ in fired] == [("early", i) for i in range(5)] + [
        ("late", i) for i in range(5)
    ]
    assert all(ran >= due >= start for _, due, ran in fired)


def test_a_cancelled_timer_never_runs_and_leaves_its_queue_at_once():
    async def go():
        queues = TimerQueues(asyncio.get_running_loop())
        fired = []
        queue = queues.queue(0.02, lambda key, due: fired.append(key))
        numbers = []
        for i in range(5):
            queues.put(queue, i)
            numbers.append(queue.tail - 1)
        queue.cancel(numbers[0])  # the first: the asyncio timer is armed for it
        queue.cancel(numbers[3])
        left = len(queues)
        await asyncio.sleep(0.15)
        return fired, left, len(queues)

    fired, left, after = run(go())
    assert fired == [1, 2, 4]
    assert (left, after) == (3, 0)


def test_timer_queues_forget_delays_no_longer_used():
    async def go():
        queues = TimerQueues(asyncio.get_running_loop())
        fired = []
        for i in range(100):  # e.g. ring timeouts changed again and again
            queues.add(0.001 * (i + 1), lambda key, due: fired.append(key), i)
        await asyncio.sleep(0.3)
        return fired, len(queues._queues)

    fired, left = run(go())
    assert fired == list(range(100))
    assert left <= TimerQueues.MAX_IDLE_QUEUES


@pytest.mark.parametrize("method", ["NOTIFY", "BYE"])
def test_requests_without_a_magic_cookie_branch_are_told_apart(method):
    """RFC 2543 peers: two requests with the same branch-less Via are two transactions when
    their CSeq differs."""

    async def go():
        async with Side(FAST) as side:
            peer = Peer()
            for seq in (1, 2):
                request = (
                    f"{method} sip:dialer@127.0.0.1:{side.address[1]} SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 127.0.0.1:9\r\n"
                    "From: <sip:pbx@127.0.0.1>;tag=p\r\nTo: <sip:dialer@127.0.0.1>;tag=d\r\n"
                    f"Call-ID: old\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                peer.sock.sendto(request, side.address)
                await asyncio.sleep(FAST.t1)
                msg, tx = side.requests[-1]
                tx.respond(format_response(msg, 200, "OK"))
            peer.close()
            return len(side.requests)

    assert run(go()) == 2


def test_tokens_are_random_hex_and_a_forked_child_never_repeats_its_parent():
    tokens = [token_hex(8) for _ in range(2000)]  # several refills of the pool
    assert len(set(tokens)) == 2000
    assert all(len(t) == 16 and int(t, 16) >= 0 for t in tokens)
    assert new_branch().startswith("z9hG4bK")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first token, to the parent
        os.write(write, token_hex(8).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != token_hex(8)  # the parent's next token: the child did not share the pool


def test_over_tcp_nothing_is_sent_again_and_nothing_lingers():
    """A reliable transport (engine/sip/stream.py against a TCP server playing the PBX): an
    INVITE and a REFER go once; their final responses end them at once (Timers D and K are
    zero, 17.1.1.2 / 17.1.2.2); a request of the PBX's is answered once and not kept (Timer J
    is zero, 17.2.2), nor is a 2xx to a re-INVITE sent again (no Timer G pattern)."""
    from engine.sip.stream import StreamTransport

    async def go():
        connected: asyncio.Queue = asyncio.Queue()

        async def accepted(reader, writer):
            await connected.put((reader, writer))

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        pbx = server.sockets[0].getsockname()[:2]
        requests = []

        def on_message(msg, source):
            if isinstance(msg, Response):
                layer.receive_response(msg)
            elif (tx := layer.receive_request(msg, source)) is not None:
                requests.append(tx)

        transport = await StreamTransport.open(on_message, "127.0.0.1")
        layer = TransactionLayer(transport, FAST)
        assert layer.reliable
        finals = []
        peer = type("Peer", (), {"address": pbx})
        side = Side(FAST)
        side.layer, side.address = layer, transport.local_address
        side.send("INVITE", peer, on_response=lambda tx, r: finals.append(r.status))
        side.send("REFER", peer, on_response=lambda tx, r: finals.append(r.status))
        reader, writer = await asyncio.wait_for(connected.get(), 5)
        got = []
        while len(got) < 2:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            got.append(head)
        for data in got:
            writer.write(answer(data, 486 if data.startswith(b"INVITE") else 202))
        reinvite = format_request(
            "INVITE",
            "sip:dialer@127.0.0.1",
            [
                ("Via", "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKpbx1"),
                ("From", "<sip:pbx@127.0.0.1>;tag=theirs"),
                ("To", "<sip:dialer@127.0.0.1>;tag=ours"),
                ("Call-ID", "dialog@test"),
                ("CSeq", "5 INVITE"),
            ],
        )
        writer.write(reinvite)
        while len(finals) < 2 or not requests:
            await asyncio.sleep(0.01)
        requests[0].respond(format_response(requests[0].request, 200, "OK"), reliable_2xx=True)
        ack = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # the 486's ACK
        ok = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await asyncio.sleep(FAST.t1 * 10)  # when Timers A, E and G would have fired
        extra = b""
        with contextlib.suppress(TimeoutError):
            extra = await asyncio.wait_for(reader.read(65536), FAST.t1 * 5)
        state = (dict(layer.client), dict(layer.lingering), dict(layer.server), layer.unacked)
        layer.close()
        transport.close()
        writer.close()
        server.close()
        return sorted(finals), ack, ok, extra, state, layer.retransmissions

    finals, ack, ok, extra, state, retransmissions = run(go())
    assert finals == [202, 486]
    assert ack.startswith(b"ACK ") and ok.startswith(b"SIP/2.0 200 OK")
    assert extra == b"" and retransmissions == 0
    assert state == ({}, {}, {}, {})
