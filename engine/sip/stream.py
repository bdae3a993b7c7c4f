"""SIP over TCP and TLS (RFC 3261 section 18): one connection to the PBX, shared by every
call of the user agent, with the same interface as the UDP `Transport`.

- **One connection per destination**, opened by us from one local port that stays the same
  across reconnections: the port in our Via and Contact. The PBX sends its requests (BYE,
  NOTIFY, re-INVITE) back on that connection, as RFC 5923 and 3261 section 18.2.2 let it
  (Kamailio, Asterisk and SIPp find it by our Contact's address). We do not listen.
- **Framing** (section 18.3): the compiled parser's `frame` finds each message's end from
  its Content-Length; CR/LF keep-alives between messages are skipped. A stream that cannot
  be framed (no Content-Length, one that is no number, a message over 64 KiB) is not read
  on: the connection is reset with the reason logged, and nothing of it reaches the layers
  above. A message that frames but does not parse is answered 400 as over UDP.
- **Writes batched per loop turn**: what is sent during one turn of the event loop (the
  answers and requests of every message one read brought) is written at its end, joined: one
  system call where there were dozens. `close` writes what waits first.
- **Reconnection with backoff** when the connection drops: `RECONNECT_FIRST` seconds, doubled
  up to `RECONNECT_MAX`. What is sent meanwhile waits (`PENDING_LIMIT` bytes at most) and
  goes out once connected. When connecting fails, `failure` words why for the admin
  (certificate not trusted, wrong host name, refused...) and `on_failure` is told, so that
  transactions waiting for the PBX end at once rather than at Timer B/F. A connection that
  drops is said and told the same way: the answers it would have carried cannot come.
- **TLS**: `ssl` with the system's CAs, or the tenant's CA bundle (PEM) instead; the PBX's
  host name is the SNI and what the certificate must name (`tls_context`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable

from engine.sip import ParseError, Request, Response, _parsing, parse
from engine.sip.transport import Address, TransportStats, bad_request

log = logging.getLogger(__name__)

#: Seconds before the first reconnection after a connection dropped or failed; doubled after
#: each failure up to `RECONNECT_MAX`, and back to the first once a connection is up.
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0
#: Seconds a connection (TLS handshake included) may take before it counts as failed.
CONNECT_TIMEOUT = 10.0
#: TCP keep-alive probes (seconds idle, seconds between, probes): a PBX gone without a word (a
#: firewall or NAT that forgot the connection) is found out in about a minute, and we reconnect.
KEEPALIVE = (30, 10, 3)
#: Bytes kept to send while the connection is down; beyond, messages are dropped (their
#: transactions end at Timer B/F, as for a lost datagram).
PENDING_LIMIT = 1024 * 1024

#: The stream framing of the loaded parser: compiled, or its twin (engine/compiled.py).
frame: Callable[[bytes | bytearray, int], tuple[int, int]] = _parsing.frame


def tls_context(ca_pem: str = "") -> ssl.SSLContext:
    """A client TLS context that verifies the PBX's certificate and host name: against the
    tenant's CA bundle (PEM) when one is given, else against the system's CAs."""
    context = ssl.create_default_context(cadata=ca_pem) if ca_pem.strip() else None
    return context or ssl.create_default_context()


def why_not_connected(
    error: BaseException, destination: Address, server_name: str, handshaking: bool = False
) -> str:
    """Why connecting to the PBX failed, in the words an admin acts on. `handshaking`: the
    TCP connection was made, and the TLS handshake on it was under way."""
    where = f"{destination[0]}:{destination[1]}"
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        said = error.verify_message
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH (IP mismatch is 64)
            return (
                f"the PBX's TLS certificate is not for {server_name} ({said}): "
                "check the PBX's host name on the SIP account"
            )
        if code == 64:
            return f"the PBX's TLS certificate is not for the address {server_name} ({said})"
        if code in (10, 9):  # expired, not yet valid
            return f"the PBX's TLS certificate is not valid now ({said})"
        if code in (18, 19, 20, 21, 2):
            return (
                f"the PBX's TLS certificate is not signed by a CA we trust ({said}): "
                "upload the CA that signed it on the SIP account"
            )
        return f"the PBX's TLS certificate was not accepted ({said})"
    if isinstance(error, ssl.SSLError):
        what = str(error.reason or error)
        return f"the TLS handshake with the PBX at {where} failed ({what}): does it speak TLS?"
    if isinstance(error, TimeoutError) and handshaking:
        # a plain TCP SIP port takes the ClientHello as the start of a message, and waits
        return (
            f"the TLS handshake with the PBX at {where} failed (no answer within "
            f"{CONNECT_TIMEOUT:g} s): does it speak TLS?"
        )
    if isinstance(error, TimeoutError):
        return f"the PBX at {where} did not accept a connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(error, ConnectionRefusedError):
        return f"the PBX at {where} refused the connection: nothing listens there on TCP"
    if isinstance(error, OSError) and error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to the PBX at {where}"
    return f"cannot connect to the PBX at {where}: {error}"


class _Connection(asyncio.Protocol):
    """One connection's bytes in: framed, parsed and passed to the transport."""

    def __init__(self, owner: StreamTransport, destination: Address):
        self.owner = owner
        self.destination = destination
        self.buffer = bytearray()
        self.unframeable = False  # we reset it: its stream could not be framed
        self.transport: asyncio.Transport | None = None
        #: Messages sent during this turn of the event loop, written together at its end.
        self.outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, data: bytes) -> None:
        """Send `data` with whatever else is sent in this turn of the event loop: one write,
        one system call, for the dozens of messages a busy turn sends (see "Under load")."""
        outgoing = self.outgoing
        outgoing.append(data)
        if len(outgoing) == 1:
            self.owner._loop.call_soon(self.flush)

    def flush(self) -> None:
        outgoing = self.outgoing
        if outgoing and self.transport is not None:
            self.transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))
        outgoing.clear()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        try:
            while True:
                begin, end = frame(buffer, start)
                if end < 0:
                    start = begin
                    break
                self.owner._received(bytes(buffer[begin:end]), self.destination)
                start = end
                if self.transport is None or self.transport.is_closing():
                    return
        except ParseError as error:
            self.owner._unframeable(self, error)
            return
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.owner._dropped(self, exc)


class StreamTransport:
    """A TCP or TLS endpoint of a user agent: `send(data, destination)` over the one
    connection to `destination` (opened as needed); every message that parses comes to
    `on_message(msg, destination)`. Reliable: the transaction layer sends nothing again."""

    reliable = True

    def __init__(
        self,
        on_message: Callable[[Request | Response, Address], None],
        accepts: Callable[[Address], bool] | None,
        tls: ssl.SSLContext | None,
        server_name: str | None,
        on_failure: Callable[[Address, str], None] | None,
    ):
        self.on_message = on_message
        self.accepts = accepts
        self.tls = tls
        self.server_name = server_name
        self.on_failure = on_failure
        self.stats = TransportStats()
        self.name = "TLS" if tls is not None else "TCP"
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()
        self._local: Address = ("0.0.0.0", 0)
        self._reserved: socket.socket | None = None  # holds our port until the first connect
        self._connections: dict[Address, _Connection] = {}
        self._pending: dict[Address, list[bytes]] = {}
        self._connecting: dict[Address, asyncio.Task[None]] = {}
        self._backoff: dict[Address, float] = {}
        #: Why the last connection attempt failed, for the admin; None once connected.
        self.failure: str | None = None
        #: Connections made so far (the first one included): reconnections are this - 1.
        self.connections_made = 0

    @classmethod
    async def open(
        cls,
        on_message: Callable[[Request | Response, Address], None],
        host: str,
        port: int = 0,
        accepts: Callable[[Address], bool] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
        on_failure: Callable[[Address, str], None] | None = None,
    ) -> StreamTransport:
        """A transport bound to (host, port), not connected yet: the first `send` to a
        destination connects."""
        transport = cls(on_message, accepts, tls, server_name, on_failure)
        sock = transport._socket(host, port)
        transport._reserved = sock
        name = sock.getsockname()
        transport._local = (str(name[0]), int(name[1]))
        return transport

    def _socket(self, host: str, port: int) -> socket.socket:
        """A TCP socket bound to our address; SO_REUSEADDR lets a reconnection take the port
        again (a connection we reset leaves no TIME_WAIT, one the PBX closed neither)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            idle, interval, count = KEEPALIVE
            if hasattr(socket, "TCP_KEEPIDLE"):  # Linux
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    @property
    def local_address(self) -> Address:
        return self._local

    def connected(self, destination: Address) -> bool:
        connection = self._connections.get(destination)
        return connection is not None and connection.transport is not None

    # --- out --------------------------------------------------------------------------------

    def send(self, data: bytes, destination: Address) -> None:
        if self.closed.done():
            return
        connection = self._connections.get(destination)
        if connection is not None and connection.transport is not None:
            connection.write(data)
            return
        pending = self._pending.setdefault(destination, [])
        if sum(map(len, pending)) + len(data) > PENDING_LIMIT:
            log.warning(
                "%s to %s:%s is down and %d bytes wait already: a message is dropped",
                self.name,
                *destination,
                PENDING_LIMIT,
            )
            return
        pending.append(data)
        if destination not in self._connecting:
            self._connect_soon(destination, 0.0)

    def _connect_soon(self, destination: Address, delay: float) -> None:
        self._connecting[destination] = self._loop.create_task(self._connect(destination, delay))

    async def _connect(self, destination: Address, delay: float) -> None:
        handshaking = False  # the TCP connection is made, TLS is being agreed on it
        try:
            if delay:
                await asyncio.sleep(delay)
            sock = self._reserved
            self._reserved = None
            if sock is None:
                try:
                    sock = self._socket(self._local[0], self._local[1])
                except OSError as error:  # the port is taken meanwhile: another one
                    port = self._local[1]
                    log.warning("%s: cannot bind port %s again (%s)", self.name, port, error)
                    sock = self._socket(self._local[0], 0)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await self._loop.sock_connect(sock, destination)
                    handshaking = self.tls is not None
                    _transport, connection = await self._loop.create_connection(
                        lambda: _Connection(self, destination),
                        sock=sock,
                        ssl=self.tls,
                        server_hostname=(self.server_name or destination[0]) if self.tls else None,
                        ssl_handshake_timeout=CONNECT_TIMEOUT if self.tls else None,
                    )
            except BaseException:
                sock.close()
                raise
        except asyncio.CancelledError:
            raise
        except (OSError, TimeoutError) as error:
            self._connecting.pop(destination, None)
            reason = why_not_connected(
                error, destination, self.server_name or destination[0], handshaking
            )
            self._failed(destination, reason)
            return
        self._connecting.pop(destination, None)
        if self.closed.done():
            _transport.close()
            return
        self.connections_made += 1
        self.failure = None
        self._backoff.pop(destination, None)
        self._connections[destination] = connection
        log.info("%s connection to %s:%s is up", self.name, *destination)
        pending = self._pending.pop(destination, [])
        if pending:
            _transport.write(b"".join(pending))

    def _failed(self, destination: Address, reason: str) -> None:
        """Connecting failed: say why, drop what waited, try again after the backoff."""
        self.failure = reason
        dropped = len(self._pending.pop(destination, []))
        log.warning(
            "%s to %s:%s: %s (%d message(s) not sent)", self.name, *destination, reason, dropped
        )
        if self.on_failure is not None:
            self.on_failure(destination, reason)
        self._retry(destination)

    def _retry(self, destination: Address) -> None:
        if self.closed.done() or destination in self._connecting:
            return
        delay = self._backoff.get(destination, RECONNECT_FIRST)
        self._backoff[destination] = min(2 * delay, RECONNECT_MAX)
        log.info("%s: reconnecting to %s:%s in %g s", self.name, *destination, delay)
        self._connect_soon(destination, delay)

    # --- in ---------------------------------------------------------------------------------

    def _received(self, data: bytes, source: Address) -> None:
        self.stats.received += 1
        try:
            msg = parse(data)
        except ParseError as error:
            log.info("malformed SIP over %s from %s:%s: %s", self.name, *source, error)
            answer = bad_request(data, error)
            if answer is not None:
                self.send(answer, source)
            return
        self.on_message(msg, source)

    def _unframeable(self, connection: _Connection, error: ParseError) -> None:
        """The stream cannot be framed: nothing more of it can be read as SIP. Reset the
        connection (no TIME_WAIT holds our port) and reconnect."""
        log.warning(
            "%s from %s:%s cannot be framed, closing the connection: %s",
            self.name,
            *connection.destination,
            error,
        )
        connection.buffer.clear()
        connection.unframeable = True
        if connection.transport is not None:
            connection.transport.abort()

    def _dropped(self, connection: _Connection, exc: Exception | None) -> None:
        destination = connection.destination
        if self._connections.get(destination) is connection:
            del self._connections[destination]
        if self.closed.done():
            return
        why = "we reset it" if connection.unframeable else exc or "closed by the PBX"
        log.warning(
            "%s connection to %s:%s dropped (%s); reconnecting", self.name, *destination, why
        )
        # The answers to what went out on it could only come back on it (we do not listen):
        # what still waits for them ends now, as our trouble, not at Timer B or never (an
        # INVITE that had its 180 has no timer but the ring timeout, whose CANCEL could not
        # reach the INVITE's transaction at the PBX either).
        self.failure = (
            f"the connection to the PBX at {destination[0]}:{destination[1]} was lost ({why})"
        )
        if self.on_failure is not None:
            self.on_failure(destination, self.failure)
        self._retry(destination)

    # --- life -------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed.done():
            return
        self.closed.set_result(None)
        for task in self._connecting.values():
            task.cancel()
        self._connecting.clear()
        self._pending.clear()
        for connection in list(self._connections.values()):
            if connection.transport is not None:
                connection.flush()  # what this turn sent goes out before the connection closes
                connection.transport.close()
        self._connections.clear()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def __repr__(self) -> str:
        return f"<StreamTransport {self.name} {self._local[0]}:{self._local[1]}>"
