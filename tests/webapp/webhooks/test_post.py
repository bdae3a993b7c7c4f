"""One webhook POST (`delivery.post`) against real servers on loopback: the whole try ends by
its deadline even when the receiver sends its answer a byte at a time; the address is looked
up and checked before anything connects, and the connection goes to the checked address with
the name kept for the Host header, TLS's SNI and the certificate's check."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest

from tests.webapp.webhooks.receiver import Receiver
from webapp.webhooks import delivery


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_deadline(monkeypatch):
    """Every read gets data well within a per-read timeout, but the answer as a whole would
    take about ten seconds: the try ends at its deadline of one."""
    monkeypatch.setattr(delivery, "DEADLINE", 1)
    with Receiver(200, drip=0.25) as receiver:
        status, error = delivery.post(receiver.url, b"{}", {}, allow_private=True)
    assert (status, error) == (None, "no complete answer in 1 s")
    assert len(receiver.received) == 1  # the POST itself went out whole


def test_a_whole_answer_within_the_deadline_is_one(monkeypatch):
    monkeypatch.setattr(delivery, "DEADLINE", 5)
    with Receiver(204) as receiver:
        assert delivery.post(receiver.url, b"{}", {}, allow_private=True) == (204, None)


def listening_socket() -> socket.socket:
    """A port on 127.0.0.1 that listens but never accepts: the kernel still completes the
    handshake of whoever connects, which `accept` then shows."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    return listener


def was_connected_to(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_a_private_address_is_refused_before_connecting_whatever_its_port_does(monkeypatch):
    """The tenant learns nothing of a refused address: an open port and a closed one get the
    same words, and the open one sees no connection at all."""
    monkeypatch.setattr(delivery, "DEADLINE", 1)  # where it is allowed, nobody answers
    with listening_socket() as listener, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # a port nobody listens on
        open_port, closed_port = listener.getsockname()[1], probe.getsockname()[1]
        answers = {
            delivery.post(f"http://127.0.0.1:{port}/hooks", b"{}", {}, allow_private=False)
            for port in (open_port, closed_port)
        }
        assert answers == {(None, "refused: 127.0.0.1 is not a public address")}
        assert not was_connected_to(listener)
        named = delivery.post(f"http://localhost:{open_port}/", b"{}", {}, allow_private=False)
        assert named == (None, "refused: localhost is not a public address")
        assert not was_connected_to(listener)
        allowed = delivery.post(f"http://127.0.0.1:{open_port}/", b"{}", {}, allow_private=True)
        assert allowed[0] is None and was_connected_to(listener)  # allowed: it does connect


PRIVATE_CARRIED = (
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "64:ff9b::a00:1",  # NAT64's well-known prefix to 10.0.0.1
    "64:ff9b::7f00:1",  # ... to 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # ... to 169.254.169.254, the cloud's metadata
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "64:ff9b:1::808:808",  # NAT64's local-use prefix: never global, whatever it carries
)
PRIVATE = (
    "127.0.0.1",
    "10.1.2.3",
    "192.168.0.1",
    "172.16.5.4",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "::10.0.0.1",
    "2001:db8::1",
)
PUBLIC = (
    "8.8.8.8",
    "1.1.1.1",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
)


def test_only_public_addresses_count_as_public_also_inside_ipv6():
    from webapp.addresses import is_public  # the webhooks' rule, and the PBX's

    for address in PRIVATE_CARRIED + PRIVATE:
        assert not is_public(address), address
    for address in PUBLIC:
        assert is_public(address), address


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::1", "::ffff:127.0.0.1"])
def test_an_ipv6_url_that_leads_to_a_private_ipv4_is_refused(address):
    url = f"http://[{address}]:8080/hooks"
    assert delivery.post(url, b"{}", {}, allow_private=False) == (
        None,
        f"refused: {address} is not a public address",
    )


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for the name `localhost`, trusted by the webhooks' TLS (the
    standard SSL_CERT_FILE), and one for another name."""

    def make(name: str) -> tuple[str, str]:
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                f"/CN={name}",
                "-addext",
                f"subjectAltName=DNS:{name}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return str(cert), str(key)

    return make


def serve_tls(receiver: Receiver, cert: str, key: str) -> list[str]:
    """Make the receiver speak HTTPS with this certificate; returns the SNI names it hears."""
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    return names


def test_https_goes_to_the_checked_address_and_keeps_the_name(certificate, monkeypatch):
    cert, key = certificate("localhost")
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    receiver = Receiver(200)
    names = serve_tls(receiver, cert, key)
    port = receiver.server.server_address[1]
    with receiver:
        url = f"https://localhost:{port}/hooks?source=autocall"
        assert delivery.post(url, b"{}", {}, allow_private=True) == (200, None)
    [received] = receiver.received
    assert received.headers["Host"] == f"localhost:{port}"
    assert names == ["localhost"]


def test_https_checks_the_certificate_for_the_name(certificate, monkeypatch, tmp_path):
    """A trusted certificate, but for another name than the URL's: refused."""
    cert, key = certificate("other.example")
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    receiver = Receiver(200)
    serve_tls(receiver, cert, key)
    with receiver:
        url = f"https://localhost:{receiver.server.server_address[1]}/"
        status, error = delivery.post(url, b"{}", {}, allow_private=True)
    assert status is None and error.startswith("cannot connect: TLS certificate: Hostname mis")
    assert receiver.received == []
