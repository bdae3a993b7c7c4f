"""Datagrams from addresses the transport does not talk to (engine/sip/transport.py): real UDP
from other sockets is dropped, counted, and warned about at a limited rate, so that a flood
from strangers cannot flood the logs too."""

from __future__ import annotations

import asyncio
import logging
import socket

from engine.sip.transport import Transport

OPTIONS = (
    b"OPTIONS sip:dialer@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-strangers-1\r\n"
    b"From: <sip:pbx@127.0.0.1>;tag=1\r\nTo: <sip:dialer@127.0.0.1>\r\n"
    b"Call-ID: strangers-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _warnings(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "engine.sip.transport" and r.levelno == logging.WARNING
    ]


def _dropped(record: logging.LogRecord) -> int:
    """How many datagrams a warning speaks of: one, or the count of a summary."""
    return record.args[0] if "more datagram" in record.msg else 1


async def _until(condition, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def test_strangers_are_counted_and_warned_about_once_an_interval(caplog):
    caplog.set_level(logging.WARNING, "engine.sip.transport")
    pbx, first, second = _udp_socket(), _udp_socket(), _udp_socket()
    (host, port), other = first.getsockname(), second.getsockname()[1]

    async def run() -> tuple[int, list[tuple]]:
        heard = []
        transport = await Transport.open(
            lambda message, source: heard.append(source),
            "127.0.0.1",
            accepts=lambda source: source == pbx.getsockname(),
        )
        ours = transport.local_address
        for _ in range(30):
            first.sendto(OPTIONS, ours)
        for _ in range(20):
            second.sendto(OPTIONS, ours)
        pbx.sendto(OPTIONS, ours)  # queued after the strangers' datagrams: read after them
        await _until(lambda: heard, "the PBX's datagram was read")
        assert heard == [pbx.getsockname()]
        assert transport.stats.foreign == 50
        during = [(r.msg, r.args) for r in _warnings(caplog)]
        transport.close()  # what came since the warning is said when the transport closes
        return transport.stats.foreign, during

    try:
        counted, during = asyncio.run(run())
    finally:
        for sock in (pbx, first, second):
            sock.close()
    assert counted == 50
    assert [message % args for message, args in during] == [
        f"dropped a datagram from {host}:{port}, which we do not talk to (more are summed up "
        "every 60 s)"
    ]
    summary = _warnings(caplog)[-1].getMessage()
    assert len(_warnings(caplog)) == 2
    assert summary == (
        "dropped 49 more datagram(s) from addresses we do not talk to since the last warning: "
        f"{host}:{port} (29), {host}:{other} (20)"
    )


def test_the_summary_comes_by_itself_when_the_interval_ends(caplog):
    caplog.set_level(logging.WARNING, "engine.sip.transport")
    pbx, stranger = _udp_socket(), _udp_socket()

    async def run() -> None:
        transport = await Transport.open(
            lambda message, source: None,
            "127.0.0.1",
            accepts=lambda source: source == pbx.getsockname(),
        )
        transport.strangers_log_interval = 0.05
        for _ in range(5):  # all sent before the loop reads any of them
            stranger.sendto(OPTIONS, transport.local_address)
        await _until(
            lambda: sum(map(_dropped, _warnings(caplog))) == 5, "every datagram was spoken of"
        )
        assert transport.stats.foreign == 5
        transport.close()

    try:
        asyncio.run(run())
    finally:
        pbx.close()
        stranger.close()
    assert [_dropped(record) for record in _warnings(caplog)] == [1, 4]
