"""SIP over UDP on asyncio: one socket, datagrams in and out (RFC 3261 section 18).

A datagram that does not parse is answered with 400 when it looks like a request and the
headers a response needs can be found (section 16.3 / 8.2); otherwise it is dropped. Either
way it is logged, and nothing reaches the layers above.

A datagram from an address the transport does not talk to (not the PBX) is dropped unread
and counted (`stats.foreign`); a warning says so at once, and then at most once a
`STRANGERS_LOG_INTERVAL`, summing up how many came and from where: a flood from strangers
cannot flood the logs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.compiled import load
from engine.sip import ParseError, Request, Response, parse
from engine.sip.message import header_key

# None (not built, or switched off): Python's socket methods do the same, a little slower.
_udp = load("engine.sip._udp")

log = logging.getLogger(__name__)

#: Where a datagram comes from or goes to: (host, port). A SIP name-addr is `NameAddr`.
Address = tuple[str, int]

#: Bytes of receive queue asked of the kernel for each socket.
RECEIVE_BUFFER = 4 * 1024 * 1024

#: How a datagram of nothing but CR and LF (a keep-alive) starts.
_CR_LF_NOTHING = (b"\r", b"\n", b"")

#: Seconds between two warnings of one transport about datagrams from strangers.
STRANGERS_LOG_INTERVAL = 60.0
#: Sources a warning names (the busiest); the others are only counted.
STRANGERS_NAMED = 5
#: Sources counted one by one between two warnings; datagrams from more are counted together.
STRANGERS_TRACKED = 100

#: The header lines a 400 response must copy, found in a datagram that did not parse.
_COPIED = re.compile(rb"^(Via|v|From|f|To|t|Call-ID|i|CSeq)[ \t]*:[^\r\n]*", re.I | re.M)


@dataclass
class TransportStats:
    received: int = 0
    foreign: int = 0  # datagrams from addresses we do not talk to, dropped unread


class Transport:
    """A UDP endpoint. `on_message(msg, source)` gets every message that parses and comes
    from an address `accepts(source)` approves (all, when it is None).

    The socket is read by the loop's reader callback, up to `BATCH` datagrams each time it is
    readable (asyncio's datagram transport reads one per loop turn, which costs a poll and a
    loop turn per datagram under load); sending tries the socket at once and queues only
    when the kernel's send buffer is full. On IPv4 the compiled `_udp` reads them with
    recvmmsg(2), `Receiver.count` per system call, and sends without parsing the address
    again for each datagram.
    """

    BATCH = 64
    #: Datagrams may be lost: the transaction layer retransmits (engine/sip/stream.py's are
    #: reliable).
    reliable = False
    #: Why the PBX cannot be reached, when the transport knows (a stream's failed connection);
    #: a datagram never knows.
    failure: str | None = None
    _sendto: Callable[[bytes, Address], object]  # the socket's, or the compiled Sender's: `open`

    def __init__(
        self,
        on_message: Callable[[Request | Response, Address], None],
        accepts: Callable[[Address], bool] | None = None,
    ):
        self.on_message = on_message
        self.accepts = accepts
        self.stats = TransportStats()
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._receiver: Any = None  # engine.sip._udp.Receiver, for IPv4
        self._pending: deque[tuple[bytes, Address]] = deque()  # waiting for send buffer room
        self.closed = self._loop.create_future()
        self.strangers_log_interval = STRANGERS_LOG_INTERVAL
        self._strangers: Counter[Address] = Counter()  # dropped since the last warning
        self._strangers_untracked = 0  # ... from sources beyond STRANGERS_TRACKED
        self._strangers_timer: asyncio.TimerHandle | None = None  # a warning was given lately

    @classmethod
    async def open(
        cls,
        on_message: Callable[[Request | Response, Address], None],
        host: str,
        port: int = 0,
        accepts: Callable[[Address], bool] | None = None,
    ) -> Transport:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            # A deep receive queue rides out a stalled loop (a GC pause, a slow tick) instead
            # of dropping datagrams; the kernel caps it at net.core.rmem_max (docs/sip.md).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(infos[0][4])
        except BaseException:
            sock.close()
            raise
        protocol = cls(on_message, accepts)
        protocol._sock = sock
        protocol._sendto = sock.sendto
        if _udp is not None and family == socket.AF_INET:
            protocol._receiver = _udp.Receiver(sock.fileno())
            protocol._sendto = _udp.Sender(sock.fileno(), sock.sendto).send
        loop.add_reader(sock.fileno(), protocol._read_ready)
        return protocol

    @property
    def local_address(self) -> Address:
        assert self._sock is not None, "the transport is closed"
        host, port = self._sock.getsockname()[:2]
        return host, port

    def close(self) -> None:
        sock = self._sock
        if sock is None:
            return
        self._sock = None
        self._loop.remove_reader(sock.fileno())
        if self._strangers_timer is not None:
            self._strangers_timer.cancel()
            self._report_strangers()  # what came since the last warning is not left unsaid
        if self._pending:
            self._loop.remove_writer(sock.fileno())
            self._pending.clear()
        sock.close()
        if not self.closed.done():
            self.closed.set_result(None)

    def _read_ready(self) -> None:
        if self._receiver is not None:
            self._read_batches()
            return
        sock = self._sock
        for _ in range(self.BATCH):
            if sock is None or self._sock is None:  # closed by what a datagram did
                return
            try:
                data, source = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for an earlier datagram
                self.error_received(exc)
                continue
            self.datagram_received(data, source)

    def _read_batches(self) -> None:
        receiver = self._receiver
        read = 0
        while read < self.BATCH:
            if self._sock is None:  # closed by what a datagram did: the fd is not ours now
                return
            try:
                batch = receiver.receive()
            except OSError as exc:  # an ICMP error for an earlier datagram
                self.error_received(exc)
                read += 1
                continue
            for data, source in batch:
                if self._sock is None:
                    return
                self.datagram_received(data, source)
            if len(batch) < receiver.count:  # the queue was empty: no call to find it so
                return
            read += len(batch)

    def send(self, data: bytes, destination: Address) -> None:
        sock = self._sock
        if sock is None:
            return
        if not self._pending:
            try:
                self._sendto(data, destination)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(sock.fileno(), self._write_ready)
            except OSError as exc:
                self.error_received(exc)
                return
        self._pending.append((data, destination))

    def _write_ready(self) -> None:
        sock = self._sock
        while self._pending and sock is not None:
            data, destination = self._pending[0]
            try:
                sock.sendto(data, destination)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
            self._pending.popleft()
        if sock is not None:
            self._loop.remove_writer(sock.fileno())

    def error_received(self, exc: OSError) -> None:
        # ICMP errors (e.g. port unreachable) come here without saying for which datagram;
        # transactions time out on their own (Timer B / F), so we only log them.
        log.debug("UDP error: %s", exc)

    def datagram_received(self, data: bytes, source: tuple[Any, ...]) -> None:
        source = source[:2]
        if self.accepts is not None and not self.accepts(source):
            self._stranger(source)  # not even a 400: strangers learn nothing from us
            return
        if data[:1] in _CR_LF_NOTHING and not data.strip(b"\r\n"):
            return  # a keep-alive (RFC 5626 section 3.5.1)
        self.stats.received += 1
        try:
            msg = parse(data)
        except ParseError as error:
            log.info("malformed SIP from %s:%s: %s", *source, error)
            self._answer_bad_request(data, source, error)
            return
        self.on_message(msg, source)

    def _stranger(self, source: Address) -> None:
        """Count a datagram dropped from a stranger; warn at once when all was quiet, else
        keep it for the next warning (`_report_strangers`, one an interval)."""
        self.stats.foreign += 1
        if self._strangers_timer is None:
            log.warning(
                "dropped a datagram from %s:%s, which we do not talk to (more are "
                "summed up every %g s)",
                *source,
                self.strangers_log_interval,
            )
            self._strangers_timer = self._loop.call_later(
                self.strangers_log_interval, self._report_strangers
            )
        elif source in self._strangers or len(self._strangers) < STRANGERS_TRACKED:
            self._strangers[source] += 1
        else:
            self._strangers_untracked += 1

    def _report_strangers(self) -> None:
        """One warning for the datagrams from strangers since the last; when none came, the
        next one is warned about at once."""
        total = self._strangers.total() + self._strangers_untracked
        if not total:
            self._strangers_timer = None
            return
        busiest = self._strangers.most_common(STRANGERS_NAMED)
        named = ", ".join(f"{host}:{port} ({count})" for (host, port), count in busiest)
        rest = total - sum(count for _source, count in busiest)
        if rest:
            named += f", and {rest} from other addresses"
        log.warning(
            "dropped %d more datagram(s) from addresses we do not talk to since the "
            "last warning: %s",
            total,
            named,
        )
        self._strangers.clear()
        self._strangers_untracked = 0
        self._strangers_timer = None
        if self._sock is not None:
            self._strangers_timer = self._loop.call_later(
                self.strangers_log_interval, self._report_strangers
            )

    def _answer_bad_request(self, data: bytes, source: Address, error: ParseError) -> None:
        response = bad_request(data, error)
        if response is not None:
            self.send(response, source)


def bad_request(data: bytes, error: ParseError) -> bytes | None:
    """The 400 answering a message that did not parse, or None when it must not be answered:
    a response, or a request whose Via, From, To, Call-ID and CSeq cannot all be found."""
    if data.lstrip(b"\r\n").startswith(b"SIP/"):
        return None  # a response: never answered
    copied = [m.group(0) for m in _COPIED.finditer(data)]
    names = {header_key(m.group(1).decode()) for m in _COPIED.finditer(data)}
    if not {"via", "from", "to", "call-id", "cseq"} <= names:
        return None  # a response could not be routed or matched: drop
    warning = str(error).replace('"', "'")[:200]
    response = b"SIP/2.0 400 Bad Request\r\n" + b"\r\n".join(copied)
    return response + f'\r\nWarning: 399 autocall "{warning}"\r\nContent-Length: 0\r\n\r\n'.encode()
