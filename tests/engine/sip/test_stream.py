"""SIP over TCP (engine/sip/stream.py) against real peers: SIPp over TCP playing the PBX, and
a plain asyncio TCP server where the test needs to control the bytes on the stream (framing,
dripping, dropping the connection)."""

import asyncio
import contextlib
import logging
import socket

from engine.sip import _parser, parser
from engine.sip.stream import StreamTransport
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)
NUMBER = "+79161234567"

OPTIONS = (
    b"OPTIONS sip:dialer@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKpeer1\r\n"
    b"From: <sip:pbx@127.0.0.1>;tag=p1\r\n"
    b"To: <sip:dialer@127.0.0.1>\r\n"
    b"Call-ID: options-1@pbx\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 4\r\n\r\nbody"
)


def tcp_agent(port: int, **account) -> UserAgent:
    return UserAgent(
        Account("127.0.0.1", port, "dialer", "secret", transport="tcp", **account),
        local_host="127.0.0.1",
        timers=FAST,
    )


def test_register_call_and_transfer_over_one_tcp_connection(pbx):
    """REGISTER, then a call answered and transferred with REFER, all over the one TCP
    connection SIPp accepted (-t t1): SIPp's NOTIFYs and BYE come back on it."""
    peer = pbx("pbx.xml", calls=2, transport="t1", fill={"ring_ms": 100})

    async def run():
        async with tcp_agent(peer.port) as ua:
            registration = await ua.register()
            target = f"sip:{NUMBER}@127.0.0.1:{peer.port}"
            attempt = await ua.place_call(target, "sip:101@127.0.0.1")
            return registration, attempt, ua.transport.connections_made, ua.layer.retransmissions

    registration, attempt, connections, retransmissions = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors
    assert registration.state == "registered"
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert seen.logged("REFER-TO") == [f"sip:101@127.0.0.1 FOR sip:{NUMBER}"]
    assert connections == 1 and retransmissions == 0
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in seen.messages
    assert ";transport=tcp>" in seen.messages


def test_a_killed_pbx_is_reached_again_when_it_is_back(pbx):
    """SIPp over TCP is killed after our REGISTER (the connection drops with it); a new SIPp
    on the same port gets our reconnection, and the next REGISTER and a whole call go over
    it."""
    first = pbx("pbx.xml", calls=2, transport="t1", fill={"ring_ms": 100})

    async def run():
        async with tcp_agent(first.port) as ua:
            before = (await ua.register()).state
            first.stop()  # kill -9
            async with asyncio.timeout(10):
                while ua.transport.connected(ua.destination):
                    await asyncio.sleep(0.05)
            second = pbx("pbx.xml", calls=2, transport="t1", port=first.port, fill={"ring_ms": 0})
            async with asyncio.timeout(10):
                while not ua.transport.connected(ua.destination):
                    await asyncio.sleep(0.05)
            after = (await ua.register()).state
            target = f"sip:{NUMBER}@127.0.0.1:{first.port}"
            attempt = await ua.place_call(target, "sip:101@127.0.0.1")
            return second, before, after, attempt, ua.transport.connections_made

    second, before, after, attempt, connections = asyncio.run(run())
    seen = second.wait()
    assert seen.succeeded, seen.errors
    assert (before, after) == ("registered", "registered")
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert connections == 2


def test_nothing_is_sent_again_and_timer_f_still_ends_the_wait():
    """A peer that accepts the connection but never answers: one REGISTER on the wire (no
    Timer E over a reliable transport), and the registration fails at Timer F."""

    async def run():
        received = bytearray()

        async def silent(reader, writer):
            while data := await reader.read(65536):
                received.extend(data)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, tcp_agent(port) as ua:
            registration = await ua.register()
            return registration, received.count(b"REGISTER sip:"), ua.layer.retransmissions

    registration, sent, retransmissions = asyncio.run(run())
    assert (registration.state, registration.detail) == ("failed", "the PBX did not answer")
    assert (sent, retransmissions) == (1, 0)


def test_a_pbx_that_cannot_be_reached_says_why_at_once_and_burns_no_lead():
    """Nothing listens on the PBX's port: the registration fails at once with the reason in
    words (not after Timer F), and a call is a technical error, not an unavailable lead."""

    async def run():
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        async with tcp_agent(port) as ua:
            registration = await ua.register()
            attempt = await ua.place_call(f"sip:{NUMBER}@127.0.0.1:{port}", "sip:101@127.0.0.1")
            return registration, attempt

    registration, attempt = asyncio.run(run())
    assert registration.state == "failed"
    assert "refused the connection: nothing listens there on TCP" in registration.detail
    assert (attempt.outcome, attempt.detail) == ("technical_error", "no_response")


class Peer:
    """A TCP server standing in for the PBX, one connection at a time, that writes what the
    test gives it."""

    def __init__(self):
        self.connections: asyncio.Queue = asyncio.Queue()
        self.server = None

    async def start(self, port: int = 0):
        async def accepted(reader, writer):
            await self.connections.put((reader, writer))

        self.server = await asyncio.start_server(accepted, "127.0.0.1", port, reuse_address=True)
        return self.server.sockets[0].getsockname()[1]

    async def next_connection(self):
        return await asyncio.wait_for(self.connections.get(), 10)


async def closed_by_us(reader) -> bool:
    """Whether we end the connection (reset or closed) within 10 s."""
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 10)
    return reader.at_eof() or reader.exception() is not None


async def transport_to(port, received):
    transport = await StreamTransport.open(
        lambda msg, source: received.put_nowait((msg, source)), "127.0.0.1"
    )
    return transport, ("127.0.0.1", port)


def test_a_message_dripped_byte_by_byte_and_keepalives_are_framed_right():
    async def run():
        peer = Peer()
        port = await peer.start()
        received: asyncio.Queue = asyncio.Queue()
        transport, pbx = await transport_to(port, received)
        transport.send(b"\r\n\r\n", pbx)  # a keep-alive opens the connection
        _reader, writer = await peer.next_connection()
        for byte in b"\r\n\r\n" + OPTIONS + OPTIONS[:40]:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0)
        first = await asyncio.wait_for(received.get(), 10)
        writer.write(OPTIONS[40:] + b"\r\n" + OPTIONS)  # the rest, a keep-alive, one more
        second = await asyncio.wait_for(received.get(), 10)
        third = await asyncio.wait_for(received.get(), 10)
        transport.close()
        writer.close()
        peer.server.close()
        return [first, second, third]

    messages = asyncio.run(run())
    assert [(m.method, m.body, m.call_id) for m, _source in messages] == [
        ("OPTIONS", b"body", "options-1@pbx")
    ] * 3


def test_messages_sent_in_one_turn_arrive_whole_and_in_order_even_just_before_close():
    """What the user agent sends during one turn of the event loop is written together at
    its end (one write instead of one a message): the PBX still reads each message whole and
    in order, and what was sent right before `close` leaves before the connection closes."""
    count = 200

    async def run():
        peer = Peer()
        port = await peer.start()
        transport, pbx = await transport_to(port, asyncio.Queue())
        transport.send(b"\r\n", pbx)
        reader, writer = await peer.next_connection()
        for i in range(count):  # one turn: nothing written yet when the loop comes back
            transport.send(OPTIONS.replace(b"options-1@pbx", f"call-{i}".encode()), pbx)
        await asyncio.sleep(0.05)
        transport.send(OPTIONS.replace(b"options-1@pbx", b"last"), pbx)
        transport.close()  # in the same turn as the last send
        async with asyncio.timeout(10):
            data = await reader.read()  # up to the end of the stream
        writer.close()
        peer.server.close()
        return data

    data = asyncio.run(run())
    messages, start = [], 0
    while True:
        begin, end = parser.frame(data, start)
        if end < 0:
            break
        messages.append(parser.parse(bytes(data[begin:end])))
        start = end
    assert start == len(data)  # nothing cut
    assert [m.call_id for m in messages] == [f"call-{i}" for i in range(count)] + ["last"]


def test_a_framed_message_that_does_not_parse_gets_400_and_the_stream_goes_on():
    bad = OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")

    async def run():
        peer = Peer()
        port = await peer.start()
        received: asyncio.Queue = asyncio.Queue()
        transport, pbx = await transport_to(port, received)
        transport.send(b"\r\n", pbx)
        reader, writer = await peer.next_connection()
        writer.write(bad + OPTIONS)
        msg, _source = await asyncio.wait_for(received.get(), 10)
        async with asyncio.timeout(10):
            answer = await reader.readuntil(b"\r\n\r\n")
        transport.close()
        peer.server.close()
        return msg, answer, received.qsize()

    msg, answer, more = asyncio.run(run())
    assert (msg.method, msg.cseq.number, more) == ("OPTIONS", 1, 0)  # only the good one
    assert answer.lstrip(b"\r\n").startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert b"Warning: 399 autocall" in answer


def test_unframeable_streams_close_the_connection_and_nothing_goes_up(caplog):
    """No Content-Length, then garbage with a head too long: each time the connection is reset
    with the reason logged, nothing reaches the user agent, and we connect again."""
    caplog.set_level(logging.WARNING, logger="engine.sip.stream")
    no_length = OPTIONS.replace(b"Content-Length: 4\r\n\r\nbody", b"\r\n")
    garbage = b"\x00GARBAGE" * 9000

    async def run():
        peer = Peer()
        port = await peer.start()
        received: asyncio.Queue = asyncio.Queue()
        transport, pbx = await transport_to(port, received)
        transport.send(b"\r\n", pbx)
        for bad in (no_length, garbage):
            reader, writer = await peer.next_connection()
            writer.write(bad)
            assert await closed_by_us(reader)
            writer.close()
        await peer.next_connection()  # and reconnected after the second too
        transport.close()
        peer.server.close()
        return received.qsize(), transport.connections_made

    delivered, connections = asyncio.run(run())
    assert delivered == 0
    assert connections == 3
    reasons = [r.getMessage() for r in caplog.records if "cannot be framed" in r.getMessage()]
    assert len(reasons) == 2
    assert "must have a Content-Length" in reasons[0]
    assert "does not end within 65536 bytes" in reasons[1]


def test_a_dropped_connection_comes_back_with_backoff_on_the_same_port(caplog):
    """The PBX goes away (its server closed and the connection dropped): we reconnect, each
    failed try waiting longer, and once it listens again the connection is back, from the
    same local port (the one in our Via and Contact)."""
    caplog.set_level(logging.INFO, logger="engine.sip.stream")

    async def run():
        peer = Peer()
        port = await peer.start()
        received: asyncio.Queue = asyncio.Queue()
        transport, pbx = await transport_to(port, received)
        transport.send(b"\r\n", pbx)
        _reader, writer = await peer.next_connection()
        ours = writer.get_extra_info("peername")
        peer.server.close()
        await peer.server.wait_closed()
        writer.transport.abort()  # the PBX is gone
        async with asyncio.timeout(10):
            while transport.failure is None or "refused" not in transport.failure:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.2)  # two more tries fail meanwhile: 0.5 s, then 1 s later
        back = Peer()
        await back.start(port)
        _reader, writer = await back.next_connection()
        again = writer.get_extra_info("peername")
        transport.send(OPTIONS, pbx)  # and it carries messages again
        writer.write(OPTIONS)
        msg, _source = await asyncio.wait_for(received.get(), 10)
        transport.close()
        back.server.close()
        return ours, again, transport.connections_made, transport.failure, msg.method

    ours, again, connections, failure, method = asyncio.run(run())
    assert again == ours  # the same local port
    assert (connections, failure, method) == (2, None, "OPTIONS")
    delays = [r.args[-1] for r in caplog.records if r.getMessage().startswith("TCP: reconnect")]
    assert delays[:2] == [0.5, 1.0]  # after the drop; after a refusal, twice as long


def test_frame_agrees_between_the_compiled_parser_and_its_twin():
    cases = [
        OPTIONS,
        b"\r\n" + OPTIONS + OPTIONS,
        OPTIONS[:-2],
        OPTIONS.replace(b"Content-Length: 4", b"l:4"),
        OPTIONS.replace(b"Content-Length: 4", b"content-length :  4 "),
        OPTIONS.replace(b"\r\n", b"\n"),
        OPTIONS.replace(b"Content-Length: 4", b"Content-Length: 4x"),
        OPTIONS.replace(b"Content-Length: 4", b"Content-Length: 99999999999"),
        OPTIONS.replace(b"Content-Length: 4", b"X-Content-Length: 4"),
        b"",
        b"\r\n\r\n",
        b"A" * 70000,
    ]
    for data in cases:
        answers = []
        for implementation in (_parser, parser):
            try:
                answers.append(implementation.frame(data, 0))
            except ValueError as error:
                answers.append(str(error))
        assert answers[0] == answers[1], data[:80]
