"""Transactions over UDP, TCP and TLS (RFC 3261 section 17), with the timers named as the RFC
names them.

Client side: INVITE (Timers A, B, D; section 17.1.1, with the Accepted state of RFC 6026 that
passes 2xx retransmissions to the user agent) and non-INVITE (Timers E, F, K; 17.1.2).
Server side: enough for what a PBX sends us: a request's response is kept to answer its
retransmissions with it (Timer J; 17.2.2), and the 2xx to a re-INVITE is retransmitted until
the ACK comes (Timers G, H; 13.3.1.4).

Over a reliable transport (TCP, TLS: `transport.reliable`) nothing is sent again, as the RFC's
timers say for it: no Timer A or E (17.1.1.2, 17.1.2.2), Timers D and K are zero (a finished
client transaction does not linger), Timer J is zero (17.2.2: no retransmitted request comes
to be answered again), and a 2xx to a re-INVITE goes once (the PBX is our only hop, and the
connection delivers it). Timers B and F still bound the wait for an answer, and Timer M keeps
an accepted INVITE to ACK the 2xx copies a proxy behind the PBX may send.

Built for thousands of calls a second, each leaving several transactions behind for up to
32 s to absorb retransmissions:

- Every timer has one of a few fixed delays (T1, 2*T1, ... T2, 64*T1, T4, Timer D), so the
  timers live in `TimerQueues`: one FIFO queue per delay and purpose, behind one asyncio timer.
  Setting a timer is an append of `(due, key)`; a timer no longer wanted stays queued and is
  ignored when it comes due (its handler checks that the transaction still waits for it).
- A transaction that has its final response (client) or has answered (server) is not an
  object any more but a tuple of plain values in one of the layer's maps (the ACK to send
  again, or the response to send again, and where to): nothing there points back at a call.
- What lingers is out of the garbage collector's sight: those tuples, their keys and the
  timer queues' entries are made untracked at once (`untracked`), and the maps and queues
  that hold them are dicts, which the collector does not walk while they hold nothing it
  tracks (a deque, or a dict that also held live transactions, would be walked whole by every
  full collection: at a few thousand calls a second, millions of entries, a pause of a tenth
  of a second each time).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.compiled import load
from engine.sip import Request, Response, parse
from engine.sip.message import format_request

if TYPE_CHECKING:
    from engine.sip.stream import StreamTransport
    from engine.sip.transport import Address, Transport
    from engine.sip.untracked import untracked
else:  # the twin, when not built: the collector untracks them on its first look instead
    untracked = load("engine.sip._untracked", "engine.sip.untracked").untracked

#: What a client transaction calls with each response it passes on, and at its timeout.
OnResponse = Callable[["ClientTransaction", Response], None]
OnTimeout = Callable[["ClientTransaction"], None]
#: A timer's handler: called with the timer's key and when it was due (`TimerQueues`).
TimerHandler = Callable[[Any, float], None]
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


class _RandomHex:
    """Hex tokens from the operating system's CSPRNG (as `secrets.token_hex`), read 4 KiB
    at a time: a call needs five (Call-ID, tag, branches), and one read serves hundreds.
    A forked child starts with an empty pool, never its parent's bytes."""

    SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def __call__(self, nbytes: int) -> str:
        at = self._at
        if at + nbytes > len(self._pool):
            self._pool, at = os.urandom(self.SIZE), 0
        self._at = at + nbytes
        return self._pool[at : at + nbytes].hex()


token_hex = _RandomHex()


def new_branch() -> str:
    return MAGIC_COOKIE + token_hex(8)


class TimerQueue:
    """The timers of one delay and one handler, in the order they come due: a dict from a
    running number to `(due, key)` (untracked), read from the front. The number of the timer
    last put is `tail - 1`; `cancel(number)` takes a timer out (its memory with it) before it
    comes due."""

    __slots__ = ("delay", "handler", "head", "items", "pinned", "tail")

    def __init__(self, delay: float, handler: TimerHandler, pinned: bool):
        self.delay = delay
        self.handler = handler
        self.items: dict[int, tuple[float, Any]] = {}
        self.head = self.tail = 0
        self.pinned = pinned  # held by its user: never forgotten when idle

    def cancel(self, number: int) -> None:
        self.items.pop(number, None)

    def first_due(self) -> float:
        """When the first timer comes due (there must be one): numbers of cancelled timers
        are skipped for good."""
        items, head = self.items, self.head
        while head not in items:
            head += 1
        self.head = head
        return items[head][0]


class TimerQueues:
    """Timers of a few fixed delays: one FIFO queue per (delay, handler), since a timer set
    later with the same delay comes due later, and one asyncio timer for the earliest.

    `add(delay, handler, key)` queues `(due, key)` and returns `due`; when it comes due,
    `handler(key, due)` runs, and decides whether the timer still matters (a timer no longer
    wanted may simply not be acted on, or be taken out with `TimerQueue.cancel`: the queue it
    went in is `last_queue`). `queue(delay, handler)` gives a queue to `put` keys in without
    looking it up each time. Timers due within `GRAIN` of each other run together; none runs
    early.
    """

    GRAIN = 0.002
    MAX_IDLE_QUEUES = 32

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        # asyncio's own loops count time with time.monotonic: skip the method around it.
        self._time: Callable[[], float] = (
            time.monotonic
            if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time
            else loop.time
        )
        self._queues: dict[tuple[float, TimerHandler], TimerQueue] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._armed = math.inf
        self.last_queue: TimerQueue | None = None

    def queue(self, delay: float, handler: TimerHandler) -> TimerQueue:
        queue = self._queues.get((delay, handler))
        if queue is None:
            queue = self._queues[(delay, handler)] = TimerQueue(delay, handler, True)
        queue.pinned = True
        return queue

    def add(self, delay: float, handler: TimerHandler, key: Any) -> float:
        queue = self._queues.get((delay, handler))
        if queue is None:
            queue = self._queues[(delay, handler)] = TimerQueue(delay, handler, False)
        self.last_queue = queue
        return self.put(queue, key)

    def put(self, queue: TimerQueue, key: Any) -> float:
        due = self._time() + queue.delay
        queue.items[queue.tail] = untracked((due, key))
        queue.tail += 1
        if due < self._armed:
            self._arm(due)
        return due

    def __len__(self) -> int:
        return sum(len(queue.items) for queue in self._queues.values())

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = when
        self._handle = self.loop.call_at(when, self._run)

    def _run(self) -> None:
        self._handle = None
        self._armed = math.inf
        now = self._time()
        try:
            for queue in list(self._queues.values()):
                items, handler = queue.items, queue.handler
                while items:
                    head = queue.head
                    entry = items.get(head)
                    if entry is None:  # cancelled
                        queue.head = head + 1
                        continue
                    due, key = entry
                    if due > now:
                        break
                    del items[head]
                    queue.head = head + 1
                    handler(key, due)
        finally:
            if len(self._queues) > self.MAX_IDLE_QUEUES:  # delays that came and went
                self._queues = {k: q for k, q in self._queues.items() if q.items or q.pinned}
            # Handlers may have set timers (and armed one for them): arm for the earliest.
            heads = [q.first_due() for q in self._queues.values() if q.items]
            if heads:
                when = max(min(heads), now + self.GRAIN)
                if when < self._armed:
                    self._arm(when)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed = math.inf
        for queue in self._queues.values():
            queue.items.clear()
        self._queues.clear()


class ClientTransaction:
    """Sends a request and follows it to its final response.

    The user agent passes `on_response(tx, response)` (called for provisional and final
    responses, and for 2xx retransmissions of an INVITE until it gives the ACK with
    `accept`) and `on_timeout(tx)`. Once the final response is in (and, for a 2xx to an
    INVITE, the ACK given), the transaction lingers in the layer as a plain tuple
    (`TransactionLayer.lingering`).
    """

    __slots__ = (
        "branch",
        "destination",
        "end_at",
        "final",
        "give_up_at",
        "give_up_number",
        "interval",
        "key",
        "layer",
        "method",
        "next_send",
        "next_send_number",
        "next_send_queue",
        "on_response",
        "on_timeout",
        "raw",
        "state",
    )

    def __init__(
        self,
        layer: TransactionLayer,
        method: str,
        branch: str,
        raw: bytes,
        destination: Address,
        on_response: OnResponse,
        on_timeout: OnTimeout,
    ):
        self.layer = layer
        self.raw = raw  # the request as sent; parsed again only to ACK a failure
        self.method = method
        self.branch = branch
        self.key = untracked((branch, method))
        self.destination = destination
        self.on_response: OnResponse | None = on_response
        self.on_timeout: OnTimeout | None = on_timeout
        self.state = "trying"  # INVITE: calling
        self.final: Response | None = None
        self.end_at: float | None = None  # when an accepted INVITE stops lingering
        queues = layer.queues
        self.interval = layer.timers.t1
        layer.transport.send(raw, destination)
        first, give_up = layer._first_send_queue, layer._give_up_queue
        self.next_send_queue, self.next_send_number = first, -1
        self.next_send: float | None = None
        if not layer.reliable:
            self.next_send = queues.put(first, self.key)  # Timer A / E
            self.next_send_number = first.tail - 1
        self.give_up_at: float | None = queues.put(give_up, self.key)  # Timer B / F
        self.give_up_number = give_up.tail - 1

    def _retransmit(self) -> None:
        layer = self.layer
        layer.transport.send(self.raw, self.destination)
        layer.retransmissions += 1
        if self.method == "INVITE":
            self.interval *= 2  # Timer A doubles without a cap
        else:
            self.interval = min(2 * self.interval, layer.timers.t2)  # Timer E
        queue = layer.queues.queue(self.interval, layer._timer_a_or_e)  # a few: T1 * 2^n, T2
        self.next_send = layer.queues.put(queue, self.key)
        self.next_send_queue, self.next_send_number = queue, queue.tail - 1

    def _stop_timers(self) -> None:
        """Take Timers A/E and B/F out of their queues (they would find nothing to do)."""
        if self.next_send is not None:
            self.next_send_queue.cancel(self.next_send_number)
        if self.give_up_at is not None:
            self.layer._give_up_queue.cancel(self.give_up_number)
        self.next_send = self.give_up_at = None

    def _timeout(self) -> None:
        on_timeout = self.on_timeout
        assert on_timeout is not None  # let go of only once the transaction is over
        self._terminate()
        on_timeout(self)

    def _terminate(self) -> None:
        self.state = "terminated"
        self._stop_timers()
        self.end_at = None
        # Let go of the user agent, so that a finished call is freed at once.
        self.on_response = self.on_timeout = None
        client = self.layer.client
        if client.get(self.key) is self:
            del client[self.key]

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state == "accepted":
            # RFC 6026: 2xx retransmissions go to the TU until it gives its ACK.
            if 200 <= status < 300 and self.on_response is not None:
                self.on_response(self, response)
            return
        deliver = self.on_response
        assert deliver is not None  # let go of only once the final response is in
        if status < 200:
            if self.method == "INVITE":
                # A provisional stops Timer A, and Timer B: the TU's ring timeout takes over.
                self._stop_timers()
            elif self.state == "trying":
                # Timer E continues in Proceeding, at T2 (section 17.1.2.2).
                self.interval = self.layer.timers.t2
            self.state = "proceeding"
            deliver(self, response)
            return
        self.final = response
        layer = self.layer
        self._stop_timers()
        if self.method == "INVITE" and status < 300:
            self.state = "accepted"
            self.on_timeout = None
            self.end_at = layer.queues.put(layer._timer_m_queue, self.key)
        else:
            if self.method == "INVITE":
                ack = self._ack(response)
                layer.transport.send(ack, self.destination)
                if layer.reliable:  # Timer D is zero (17.1.1.2)
                    layer._let_go(self)
                else:
                    layer._linger(self, layer._timer_d_queue, ack, False)
            elif layer.reliable:  # Timer K is zero (17.1.2.2)
                layer._let_go(self)
            else:
                layer._linger(self, layer._timer_k_queue, None, False)
            self.state = "completed"
            self.on_response = self.on_timeout = None
        deliver(self, response)

    def accept(self, ack: bytes) -> None:
        """The user agent's ACK for the 2xx: every later 2xx copy gets it again (section
        13.2.2.4) until Timer M, and the transaction lets go of the user agent."""
        if self.state != "accepted":
            return
        self.state = "terminated"  # as an object; it lingers on as a tuple
        self.on_response = None
        layer = self.layer
        if layer.client.get(self.key) is self:
            del layer.client[self.key]
            layer.lingering[self.key] = untracked(
                (self.end_at, ack, untracked(self.destination), True)
            )

    def _ack(self, response: Response) -> bytes:
        """ACK for a non-2xx final response: part of this transaction (section 17.1.1.3)."""
        request = parse(self.raw)
        assert isinstance(request, Request) and request.cseq is not None  # ours, as sent
        headers = [("Via", request.get_all("via")[0])]
        headers += [("Route", route) for route in request.get_all("route")]
        headers += [
            ("Max-Forwards", "70"),
            ("From", request.get("from") or ""),
            ("To", response.get("to") or ""),
            ("Call-ID", request.call_id or ""),
            ("CSeq", f"{request.cseq.number} ACK"),
        ]
        return format_request("ACK", request.uri, headers)


class ServerTransaction:
    """A request the user agent is answering: `respond` sends the response, which the layer
    keeps to answer the request's retransmissions with (as plain bytes)."""

    __slots__ = ("key", "layer", "request", "source")

    def __init__(
        self, layer: TransactionLayer, request: Request, source: Address, key: tuple[Any, ...]
    ):
        self.layer = layer
        self.request = request
        self.source = source
        self.key = key

    def respond(self, response: bytes, reliable_2xx: bool = False) -> None:
        layer = self.layer
        layer.transport.send(response, self.source)
        if layer.reliable:  # Timers I and J are zero, and no 2xx is sent again (17.2.1, 17.2.2)
            return
        due = layer.queues.put(layer._timer_j_queue, self.key)  # Timer J / H
        layer.server[self.key] = untracked((due, response, untracked(self.source)))
        if reliable_2xx:  # a 2xx to INVITE is resent until the ACK (Timer G's pattern)
            request = self.request
            assert request.cseq is not None  # a request the layer took has one
            dialog_key = untracked((request.call_id, request.cseq.number))
            interval = layer.timers.t1
            next_send = layer.queues.add(interval, layer._timer_g, dialog_key)
            layer.unacked[dialog_key] = [response, self.source, interval, next_send, due]


class TransactionLayer:
    """Matches responses to client transactions and retransmitted requests to server ones.

    `client` maps (branch, method) to a live `ClientTransaction`; `lingering` maps it, once
    the transaction has its final response, to the tuple (until, ACK to send again or None,
    destination, whether the ACK answers copies of a 2xx or of a failure). `server` maps a
    request's key to (until, response, source). Keys and tuples in `lingering` and `server`
    are untracked, so that those dicts are too (see the module's docstring).
    """

    def __init__(self, transport: Transport | StreamTransport, timers: Timers = DEFAULT_TIMERS):
        self.transport = transport
        self.timers = timers
        #: TCP or TLS: nothing is sent again, and finished transactions do not linger.
        self.reliable: bool = transport.reliable
        self.loop = asyncio.get_running_loop()
        self.queues = TimerQueues(self.loop)
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        self.lingering: dict[tuple[str, str], tuple[float | None, bytes | None, Address, bool]] = {}
        self.server: dict[tuple[Any, ...], tuple[float, bytes, Address]] = {}
        #: 2xx responses to re-INVITEs still resent, by (Call-ID, CSeq number):
        #: [response, destination, interval, next send, until].
        self.unacked: dict[tuple[str | None, int], list[Any]] = {}
        self.retransmissions = 0
        # The timer handlers, bound once: the queues are keyed by them.
        self._timer_a_or_e = self._timer_a_or_e  # type: ignore[method-assign]
        self._timer_b_or_f = self._timer_b_or_f  # type: ignore[method-assign]
        self._linger_over = self._linger_over  # type: ignore[method-assign]
        self._server_over = self._server_over  # type: ignore[method-assign]
        self._timer_g = self._timer_g  # type: ignore[method-assign]
        queue, b = self.queues.queue, timers.b
        self._first_send_queue = queue(timers.t1, self._timer_a_or_e)
        self._give_up_queue = queue(b, self._timer_b_or_f)
        self._timer_m_queue = queue(b, self._linger_over)
        self._timer_d_queue = queue(timers.d, self._linger_over)
        self._timer_k_queue = queue(timers.t4, self._linger_over)
        self._timer_j_queue = queue(b, self._server_over)

    # --- client transactions ----------------------------------------------------------------

    def send_request(
        self,
        method: str,
        branch: str,
        raw: bytes,
        destination: Address,
        on_response: OnResponse,
        on_timeout: OnTimeout,
    ) -> ClientTransaction:
        """Send `raw` (a request of `method` whose top Via has `branch`) as a new client
        transaction."""
        tx = ClientTransaction(self, method, branch, raw, destination, on_response, on_timeout)
        self.client[tx.key] = tx
        return tx

    def receive_response(self, response: Response) -> bool:
        """Hand a response to its transaction (section 17.1.3); False when none matches."""
        cseq = response.cseq
        branch = response.branch
        if cseq is None or branch is None:
            return False
        key = (branch, cseq.method)
        tx = self.client.get(key)
        if tx is not None:
            tx.receive(response)
            return True
        entry = self.lingering.get(key)
        if entry is None:
            return False
        _, ack, destination, for_2xx = entry  # ACK a copy of the final response again
        if ack is not None and response.status >= 200 and (response.status < 300) == for_2xx:
            self.transport.send(ack, destination)
        return True

    def _linger(
        self, tx: ClientTransaction, queue: TimerQueue, ack: bytes | None, for_2xx: bool
    ) -> None:
        """Keep a finished client transaction as a tuple, to absorb retransmitted responses
        (Timers D and K; M is `accept`'s)."""
        key = tx.key
        if self.client.get(key) is tx:
            del self.client[key]
        due = self.queues.put(queue, key)
        self.lingering[key] = untracked((due, ack, untracked(tx.destination), for_2xx))

    def _let_go(self, tx: ClientTransaction) -> None:
        """Forget a finished client transaction at once (reliable transports)."""
        if self.client.get(tx.key) is tx:
            del self.client[tx.key]

    def fail(self, destination: Address) -> int:
        """The transport could not reach `destination`, or lost its connection to it: every
        client transaction to it that has no final answer yet (none, or only a provisional
        one: an INVITE ringing) times out now rather than at Timer B/F or never. Returns how
        many."""
        failed = [
            tx
            for tx in self.client.values()
            if tx.destination == destination
            and tx.state in ("trying", "proceeding")
            and tx.on_timeout
        ]
        for tx in failed:
            tx._timeout()
        return len(failed)

    def _timer_a_or_e(self, key: tuple[str, str], due: float) -> None:
        tx = self.client.get(key)
        if tx is not None and tx.next_send == due:
            tx._retransmit()

    def _timer_b_or_f(self, key: tuple[str, str], due: float) -> None:
        tx = self.client.get(key)
        if tx is not None and tx.give_up_at == due:
            tx._timeout()

    def _linger_over(self, key: tuple[str, str], due: float) -> None:
        entry = self.lingering.get(key)
        if entry is not None and entry[0] == due:
            del self.lingering[key]
            return
        tx = self.client.get(key)
        if tx is not None and tx.end_at == due:  # accepted, and the user agent never ACKed
            tx._terminate()

    # --- server transactions ----------------------------------------------------------------

    @staticmethod
    def server_key(request: Request) -> tuple[Any, ...]:
        """Section 17.2.3: the top Via's branch and sent-by, and the method (ACK counting as
        INVITE); for a branch without the magic cookie (RFC 2543), Call-ID, CSeq and From tag."""
        top = request.get("via") or ""
        sent_by = top.split(";", 1)[0].split(",", 1)[0].strip()
        method = "INVITE" if request.method == "ACK" else request.method
        branch = request.branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            cseq = request.cseq
            return untracked(
                (branch, sent_by, method, request.call_id, cseq and cseq.number, request.from_tag)
            )
        return untracked((branch, sent_by, method))

    def receive_request(self, request: Request, source: Address) -> ServerTransaction | None:
        """A new server transaction for `request`; None when there is nothing to do: an ACK
        (which stops a 2xx being resent), or a retransmission (answered again here)."""
        if request.method == "ACK":
            cseq = request.cseq
            if cseq is not None:
                self.unacked.pop((request.call_id, cseq.number), None)
            return None
        key = self.server_key(request)
        answered = self.server.get(key)
        if answered is not None:
            self.transport.send(answered[1], source)
            return None
        return ServerTransaction(self, request, source, key)

    def _server_over(self, key: tuple[Any, ...], due: float) -> None:
        entry = self.server.get(key)
        if entry is not None and entry[0] == due:
            del self.server[key]

    def _timer_g(self, dialog_key: tuple[str | None, int], due: float) -> None:
        entry = self.unacked.get(dialog_key)
        if entry is None or entry[3] != due:
            return
        response, destination, interval, _, until = entry
        if due >= until:  # Timer H: no ACK came
            del self.unacked[dialog_key]
            return
        self.transport.send(response, destination)
        self.retransmissions += 1
        entry[2] = interval = min(2 * interval, self.timers.t2)
        entry[3] = self.queues.add(interval, self._timer_g, dialog_key)

    def close(self) -> None:
        for tx in list(self.client.values()):
            tx.on_response = tx.on_timeout = None
        self.queues.close()
        self.client.clear()
        self.lingering.clear()
        self.server.clear()
        self.unacked.clear()
