"""SIP over TLS against Kamailio (tests/kamailio.py): a TLS front with a certificate from a CA
the test makes, relaying over UDP to SIPp playing the PBX. The tenant's CA is given to the
user agent as the portal stores it (PEM text); the certificate names `localhost`."""

import asyncio
import socket

import pytest

from engine.probe import test_call as run_test_call
from engine.sip.transaction import Timers
from engine.sip.ua import Account, UserAgent
from tests.kamailio import Kamailio, make_ca, make_server_certificate

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)
NUMBER = "+79161234567"
HOST = "localhost"  # the PBX's name: the SNI, and what its certificate must name


@pytest.fixture(scope="module")
def ca():
    return make_ca()


@pytest.fixture
def tls_front(tmp_path, ca):
    """Start Kamailio with TLS in front of a SIPp PBX; give (kamailio, sipp)."""
    assert socket.getaddrinfo(HOST, 5061, type=socket.SOCK_DGRAM)[0][4][0] == "127.0.0.1"
    started = []

    def start(peer, host_name=HOST):
        workdir = tmp_path / f"kamailio-{len(started)}"
        workdir.mkdir()
        proxy = Kamailio(workdir, make_server_certificate(ca, host_name), peer.port, host_name)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def tls_account(port: int, ca_pem: str, **more) -> Account:
    return Account(HOST, port, "dialer", "secret", transport="tls", tls_ca_pem=ca_pem, **more)


def test_register_call_and_transfer_over_tls_with_the_tenants_ca(pbx, tls_front, ca):
    peer = pbx("pbx.xml", calls=2, fill={"ring_ms": 100})
    proxy = tls_front(peer)

    async def run():
        ua = UserAgent(
            tls_account(proxy.tls_port, ca.cert_pem), local_host="127.0.0.1", timers=FAST
        )
        async with ua:
            registration = await ua.register()
            target = f"sip:{NUMBER}@{HOST}:{proxy.tls_port}"
            attempt = await ua.place_call(target, "sip:101@localhost")
            return registration, attempt, ua.transport.connections_made

    registration, attempt, connections = asyncio.run(run())
    seen = peer.wait()
    assert seen.succeeded, seen.errors + proxy.log()[-3000:]
    assert registration.state == "registered", registration
    assert (attempt.outcome, attempt.transfer_result) == ("answered", "succeeded")
    assert seen.logged("REFER-TO") == [f"sip:101@localhost FOR sip:{NUMBER}"]
    assert connections == 1
    assert "Via: SIP/2.0/TLS 127.0.0.1:" in seen.messages  # ours, under Kamailio's
    assert ";transport=tls>" in seen.messages
    log = proxy.log()
    assert "KAMAILIO INVITE over tls" in log and "KAMAILIO REFER over tls" in log
    assert "KAMAILIO NOTIFY over udp" in log  # SIPp's, relayed to us over our connection


def test_sips_uris_where_the_tenant_asks(pbx, tls_front, ca):
    peer = pbx("pbx.xml", calls=1, fill={"ring_ms": 100})
    proxy = tls_front(peer)

    async def run():
        account = tls_account(proxy.tls_port, ca.cert_pem, use_sips=True)
        async with UserAgent(account, local_host="127.0.0.1", timers=FAST) as ua:
            return await ua.register()

    registration = asyncio.run(run())
    peer.stop()
    seen = peer.result()
    assert registration.state == "registered", registration
    assert "REGISTER sips:localhost:" in seen.messages
    assert "Contact: <sips:dialer@127.0.0.1:" in seen.messages


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("system CAs", "is not signed by a CA we trust"),
        ("another CA", "is not signed by a CA we trust"),
        ("another host name", "is not for localhost"),
    ],
)
def test_a_certificate_that_does_not_verify_is_said_and_no_call_goes(
    pbx, tls_front, ca, case, said
):
    """The admin sees why (the registration's detail, as the SIP page shows it), the test
    call is not placed, and nothing reaches the PBX."""
    peer = pbx("pbx.xml", calls=1, fill={"ring_ms": 100})
    proxy = tls_front(peer, "pbx.example.org" if case == "another host name" else HOST)
    ca_pem = {"system CAs": "", "another CA": make_ca("Someone else").cert_pem}.get(
        case, ca.cert_pem
    )
    result = asyncio.run(
        run_test_call(
            tls_account(proxy.tls_port, ca_pem),
            NUMBER,
            "101",
            register=True,
            local_host="127.0.0.1",
            timers=FAST,
        )
    )
    peer.stop()
    assert result["outcome"] is None
    assert result["detail"] == "not placed: the registration failed"
    registration = result["registration"]
    assert registration["state"] == "failed"
    assert said in registration["detail"]
    assert "KAMAILIO" not in proxy.log()  # no request got through
    assert peer.result().messages == ""


def test_the_pbx_host_name_is_the_sni(tmp_path, ca):
    """A TLS server (Python's ssl on loopback) records the server name our ClientHello
    asks for: the PBX's host name from the SIP account."""
    import ssl

    from engine.sip.stream import StreamTransport, tls_context

    server_cert = make_server_certificate(ca, HOST)
    (tmp_path / "cert.pem").write_text(server_cert.cert_pem)
    (tmp_path / "key.pem").write_text(server_cert.key_pem)
    asked = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda sock, name, ctx: asked.append(name)

    async def run():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=context)
        pbx = server.sockets[0].getsockname()[:2]
        transport = await StreamTransport.open(
            lambda msg, source: None, "127.0.0.1", tls=tls_context(ca.cert_pem), server_name=HOST
        )
        transport.send(b"\r\n", pbx)
        async with asyncio.timeout(10):
            while not transport.connected(pbx):
                await asyncio.sleep(0.01)
        transport.close()
        server.close()

    asyncio.run(run())
    assert asked == [HOST]
