"""engine/sip/_udp.pyx against plain UDP sockets: what it reads and sends is what Python's
socket methods would have read and sent."""

import socket

import pytest

from engine.sip import _udp


@pytest.fixture
def sockets():
    made = []

    def make():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        made.append(sock)
        return sock

    yield make
    for sock in made:
        sock.close()


def test_the_receiver_reads_waiting_datagrams_in_order_with_their_sources(sockets):
    ours, pbx, stranger = sockets(), sockets(), sockets()
    receiver = _udp.Receiver(ours.fileno(), 4)
    assert receiver.receive() == []  # nothing waiting: no error, no datagram
    sent = [
        (pbx, b"one"),
        (pbx, b"two"),
        (stranger, b"three"),
        (pbx, b"x" * 60000),
        (pbx, b""),
        (pbx, b"six"),
    ]
    for sender, data in sent:
        sender.sendto(data, ours.getsockname())
    got = receiver.receive() + receiver.receive() + receiver.receive()
    assert [data for data, _ in got] == [data for _, data in sent]
    assert [source for _, source in got] == [sender.getsockname() for sender, _ in sent]
    assert all(type(source) is tuple and type(source[0]) is str for _, source in got)
    assert receiver.receive() == []


def test_the_sender_sends_where_told_even_when_the_destination_changes(sockets):
    ours, pbx, other = sockets(), sockets(), sockets()
    fallen_back = []

    def fallback(data, destination):
        fallen_back.append(destination)
        return ours.sendto(data, destination)

    sender = _udp.Sender(ours.fileno(), fallback)
    assert sender.send(b"INVITE", pbx.getsockname()) == 6
    assert sender.send(b"ACK", ("127.0.0.1", other.getsockname()[1])) == 3  # another object
    assert sender.send(b"BYE", pbx.getsockname()) == 3
    assert sender.send(b"OPTIONS", ("localhost", pbx.getsockname()[1])) == 7  # not numeric
    assert fallen_back == [("localhost", pbx.getsockname()[1])]
    assert pbx.recvfrom(100) == (b"INVITE", ours.getsockname())
    assert pbx.recvfrom(100) == (b"BYE", ours.getsockname())
    assert pbx.recvfrom(100) == (b"OPTIONS", ours.getsockname())
    assert other.recvfrom(100) == (b"ACK", ours.getsockname())


def test_the_sender_raises_what_sendto_raises(sockets):
    ours = sockets()
    sender = _udp.Sender(ours.fileno(), ours.sendto)
    with pytest.raises(OSError) as raised:
        sender.send(b"x" * 70000, ("127.0.0.1", 9))  # larger than a datagram can be
    with pytest.raises(OSError) as expected:
        ours.sendto(b"x" * 70000, ("127.0.0.1", 9))
    assert raised.value.errno == expected.value.errno
