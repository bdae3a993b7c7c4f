"""Transactions over UDP (RFC 3261 section 17), with the timers named as the RFC names them.

Client side: INVITE (Timers A, B, D; section 17.1.1, with the Accepted state of RFC 6026 that
passes 2xx retransmissions to the user agent) and non-INVITE (Timers E, F, K; 17.1.2).
Server side: enough for what a PBX sends us: a non-INVITE server transaction that answers a
retransmitted request with the same response (Timer J; 17.2.2), and an INVITE server
transaction for re-INVITEs whose 2xx is retransmitted until the ACK comes (Timers G, H; 13.3.1.4).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from engine.sip import Request, Response
from engine.sip.message import format_request

Address = tuple[str, int]
MAGIC_COOKIE = "z9hG4bK"  # every branch we make starts with it (section 8.1.1.7)


@dataclass(frozen=True)
class Timers:
    """The base timer values, in seconds; tests shorten them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:  # also F, H, J and M: 64 * T1
        return 64 * self.t1

    @property
    def d(self) -> float:
        return max(32.0, self.b)


DEFAULT_TIMERS = Timers()


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


class ClientTransaction:
    """Sends a request and follows it to its final response.

    The user agent passes `on_response(tx, response)` (called for provisional and final
    responses, and for 2xx retransmissions of an INVITE) and `on_timeout(tx)`.
    """

    def __init__(self, layer: TransactionLayer, request: Request, raw: bytes,
                 destination: Address, on_response, on_timeout):  # fmt: skip
        self.layer = layer
        self.request = request
        self.raw = raw
        self.method = request.method
        self.branch = request.branch
        self.destination = destination
        self.on_response = on_response
        self.on_timeout = on_timeout
        self.state = "trying"  # INVITE: calling
        self.final: Response | None = None
        #: The ACK of a 2xx, set by the user agent: then 2xx copies are ACKed here.
        self.ack: bytes | None = None
        self._retransmit: asyncio.TimerHandle | None = None
        self._interval = layer.timers.t1
        self._give_up = layer.loop.call_later(layer.timers.b, self._timeout)  # Timer B / F
        self._end: asyncio.TimerHandle | None = None
        self._send()
        self._retransmit = layer.loop.call_later(self._interval, self._timer_a_or_e)

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch, self.method)

    def _send(self) -> None:
        self.layer.transport.send(self.raw, self.destination)

    def _timer_a_or_e(self) -> None:
        self._send()
        self.layer.retransmissions += 1
        if self.method == "INVITE":
            self._interval *= 2  # Timer A doubles without a cap
        else:
            self._interval = min(2 * self._interval, self.layer.timers.t2)  # Timer E
        self._retransmit = self.layer.loop.call_later(self._interval, self._timer_a_or_e)

    def _timeout(self) -> None:
        if self.state in ("trying", "proceeding"):
            on_timeout = self.on_timeout
            self._terminate()
            on_timeout(self)

    def _stop_retransmitting(self) -> None:
        if self._retransmit is not None:
            self._retransmit.cancel()
            self._retransmit = None

    def _linger(self, seconds: float) -> None:
        """Stay a while to absorb retransmitted responses (Timers D, K and M), holding as
        little as possible: thousands of calls a minute linger at once."""
        self._stop_retransmitting()
        self._give_up.cancel()
        self._give_up = None
        if self.method != "INVITE" or self.state != "accepted":
            self.on_response = self.on_timeout = None  # the user agent has its answer
        self._end = self.layer.loop.call_later(seconds, self._terminate)

    def _terminate(self) -> None:
        self._stop_retransmitting()
        if self._give_up is not None:
            self._give_up.cancel()
        self.state = "terminated"
        # Break the cycles through timer handles and callbacks, so that reference counting
        # frees a finished call at once instead of leaving it to the garbage collector.
        self._give_up = self._end = self.on_response = self.on_timeout = None
        self.layer.forget(self)

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state in ("trying", "proceeding"):
            if status < 200:
                if self.state == "trying" and self.method == "INVITE":
                    self._stop_retransmitting()  # a provisional stops Timer A
                elif self.state == "trying":
                    # Timer E continues in Proceeding, at T2 (section 17.1.2.2).
                    self._interval = self.layer.timers.t2
                if self.method == "INVITE":
                    self._give_up.cancel()  # the TU's ring timeout takes over
                self.state = "proceeding"
                self.on_response(self, response)
                return
            self.final = response
            deliver = self.on_response  # lingering lets go of the user agent
            if self.method == "INVITE" and status < 300:
                self.state = "accepted"  # RFC 6026: 2xx retransmissions go to the TU
                self._linger(self.layer.timers.b)  # Timer M
            elif self.method == "INVITE":
                self.state = "completed"
                self._send_ack(response)
                self._linger(self.layer.timers.d)  # Timer D
            else:
                self.state = "completed"
                self._linger(self.layer.timers.t4)  # Timer K
            deliver(self, response)
        elif self.state == "accepted" and 200 <= status < 300:
            if self.ack is not None:  # every 2xx copy gets the ACK again (section 13.2.2.4)
                self.layer.transport.send(self.ack, self.destination)
            elif self.on_response is not None:
                self.on_response(self, response)
        elif self.state == "completed" and self.method == "INVITE" and status >= 300:
            self._send_ack(response)  # a retransmitted final response: ACK it again

    def _send_ack(self, response: Response) -> None:
        """ACK for a non-2xx final response: part of this transaction (section 17.1.1.3)."""
        request = self.request
        headers = [("Via", request.get_all("via")[0])]
        headers += [("Route", route) for route in request.get_all("route")]
        headers += [
            ("Max-Forwards", "70"),
            ("From", request.get("from")),
            ("To", response.get("to")),
            ("Call-ID", request.call_id),
            ("CSeq", f"{request.cseq.number} ACK"),
        ]
        self.layer.transport.send(format_request("ACK", request.uri, headers), self.destination)

    def cancel_timers(self) -> None:
        self._stop_retransmitting()
        for handle in (self._give_up, self._end):
            if handle is not None:
                handle.cancel()


class ServerTransaction:
    """Remembers the response to a request, to answer its retransmissions with it."""

    def __init__(self, layer: TransactionLayer, request: Request, source: Address):
        self.layer = layer
        self.source = source
        self.method = request.method
        self.key = ServerTransaction.key_of(request)
        self.response: bytes | None = None
        self._retransmit: asyncio.TimerHandle | None = None
        self._interval = layer.timers.t1
        self._end = layer.loop.call_later(layer.timers.b, self.terminate)  # Timer J / H

    @staticmethod
    def key_of(request: Request) -> tuple:
        via = request.via
        method = "INVITE" if request.method == "ACK" else request.method
        return (via.branch if via else None, via.host if via else None, method)

    def respond(self, response: bytes, reliable_2xx: bool = False) -> None:
        self.response = response
        self.layer.transport.send(response, self.source)
        if reliable_2xx:  # a 2xx to INVITE is resent until the ACK (Timer G's pattern)
            self._retransmit = self.layer.loop.call_later(self._interval, self._resend)

    def _resend(self) -> None:
        self.layer.transport.send(self.response, self.source)
        self.layer.retransmissions += 1
        self._interval = min(2 * self._interval, self.layer.timers.t2)
        self._retransmit = self.layer.loop.call_later(self._interval, self._resend)

    def acknowledged(self) -> None:
        if self._retransmit is not None:
            self._retransmit.cancel()
            self._retransmit = None

    def terminate(self) -> None:
        self.acknowledged()
        self._end.cancel()
        self._end = None  # no cycle through the timer handle
        self.layer.server.pop(self.key, None)


class TransactionLayer:
    """Matches responses to client transactions and retransmitted requests to server ones."""

    def __init__(self, transport, timers: Timers = DEFAULT_TIMERS):
        self.transport = transport
        self.timers = timers
        self.loop = asyncio.get_running_loop()
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        self.server: dict[tuple, ServerTransaction] = {}
        self.retransmissions = 0

    def send_request(self, request: Request, raw: bytes, destination: Address,
                     on_response: Callable, on_timeout: Callable) -> ClientTransaction:  # fmt: skip
        tx = ClientTransaction(self, request, raw, destination, on_response, on_timeout)
        self.client[tx.key] = tx
        return tx

    def forget(self, tx: ClientTransaction) -> None:
        self.client.pop(tx.key, None)

    def receive_response(self, response: Response) -> bool:
        """Hand a response to its transaction (section 17.1.3); False when none matches."""
        cseq = response.cseq
        branch = response.branch
        if cseq is None or branch is None:
            return False
        tx = self.client.get((branch, cseq.method))
        if tx is None:
            return False
        tx.receive(response)
        return True

    def match_request(self, request: Request) -> ServerTransaction | None:
        """The server transaction a retransmitted request (or an ACK to our 2xx) belongs to."""
        return self.server.get(ServerTransaction.key_of(request))

    def start_server(self, request: Request, source: Address) -> ServerTransaction:
        tx = ServerTransaction(self, request, source)
        self.server[tx.key] = tx
        return tx

    def close(self) -> None:
        for tx in list(self.client.values()):
            tx.cancel_timers()
        for tx in list(self.server.values()):
            tx.terminate()
        self.client.clear()
