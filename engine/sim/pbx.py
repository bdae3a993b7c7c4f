"""The demo PBX: a small SIP server of our own that behaves like a tenant's PBX for the dialer.

    autocall demo-pbx [--port 5090] [--user demo] [--password demo] [--answer 0.55] ...
    python -m engine.sim.pbx ...

It accepts REGISTER with digest authentication (MD5, qop=auth); routes each INVITE to a
simulated customer who answers, is busy, does not answer (rings until the dialer CANCELs) or
is unreachable, with configurable probabilities and ring times (or, with `by_last_digit`,
by the dialed number's last digit like tests/sipp/pbx.xml: 2 busy, 3 no answer, 4 unreachable,
anything else answers); accepts REFER and transfers the customer to the operator's phone (an
extension that auto-answers after a moment, or does not when listed as unreachable),
reporting progress by NOTIFY (message/sipfrag), then ends the dialer's leg with BYE as
Asterisk does. Real SIP over UDP, on loopback or any address.

It keeps a journal of every call (`DemoPBX.journal`; `--journal FILE` writes it as JSON lines):
when each INVITE came, and when and how the call ended at the PBX (a final response, the
dialer's CANCEL or BYE, or our BYE after a transfer). The fault tests judge the engine by it:
who was called, when, and how many at once.

It is a simulator, not a PBX: one peer at a time, no media, no routing beyond the above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.sip import Request, Response, parse
from engine.sip.auth import digest_response
from engine.sip.message import ParseError, format_request, format_response, parse_challenge

log = logging.getLogger(__name__)

REALM = "autocall-demo"
ANSWER, BUSY, NO_ANSWER, UNAVAILABLE = "answer", "busy", "no_answer", "unavailable"


@dataclass
class Behaviour:
    """How the simulated customers and operators' phones behave."""

    answer: float = 0.55
    busy: float = 0.15
    no_answer: float = 0.15
    unavailable: float = 0.15
    ring_min: float = 1.0
    ring_max: float = 5.0
    #: Seconds the operator's phone rings before it answers the transfer.
    transfer_delay: float = 0.5
    #: Extensions whose phone cannot be reached: their transfers fail (480).
    unreachable_extensions: frozenset[str] = frozenset()
    #: Decide by the dialed number's last digit instead of at random (tests, benchmarks).
    by_last_digit: bool = False
    #: Seconds a customer who does not answer rings before the network gives up (408), as a
    #: real PBX's or carrier's limit does when the dialer never CANCELs.
    ring_limit: float = 120.0

    def fate(self, rng: random.Random, number: str) -> str:
        if self.by_last_digit:
            return {"2": BUSY, "3": NO_ANSWER, "4": UNAVAILABLE}.get(number[-1:], ANSWER)
        weights = (self.answer, self.busy, self.no_answer, self.unavailable)
        return rng.choices((ANSWER, BUSY, NO_ANSWER, UNAVAILABLE), weights)[0]

    def ring_time(self, rng: random.Random) -> float:
        return rng.uniform(self.ring_min, self.ring_max)


@dataclass(frozen=True)
class Entry:
    """One line of the journal: `kind` is `invite`, `answered`, `refer`, or how the call
    ended at the PBX: `final` (a failure response, `status`), `cancel`, `bye` (the dialer's),
    `transferred` (our BYE after the transfer), `no_ack` (our 2xx was never acknowledged)."""

    at: float  # wall-clock seconds
    kind: str
    call_id: str
    number: str
    status: int | None = None
    source: str = ""  # the dialer's address ("host:port"): which user agent placed the call


#: The kinds of entry that end a call at the PBX.
ENDS = ("final", "cancel", "bye", "transferred", "no_ack")


@dataclass
class _Call:
    invite: Request
    source: tuple
    tag: str
    fate: str
    final: bytes | None = None  # our final response, sent again for a retransmitted INVITE
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    seq: int = 100  # our CSeq in the dialog (NOTIFY, BYE)
    ended: bool = False
    task: asyncio.Task | None = None


class DemoPBX(asyncio.DatagramProtocol):
    def __init__(
        self,
        username: str = "demo",
        password: str = "demo",
        behaviour: Behaviour | None = None,
        seed: int | None = None,
        on_entry: Callable[[Entry], None] | None = None,
    ):
        self.username = username
        self.password = password
        self.behaviour = behaviour or Behaviour()
        self.rng = random.Random(seed)
        self.calls: dict[str | None, _Call] = {}  # by Call-ID
        self.pending: dict[str | None, asyncio.Future] = {}  # our requests' branches -> response
        self.nonces: set[str] = set()
        self.stats: Counter = Counter()
        self.transport: asyncio.DatagramTransport | None = None
        self.journal: list[Entry] = []
        self.on_entry = on_entry

    def record(self, kind: str, call: _Call, status: int | None = None) -> None:
        number = call.invite.uri.split("@")[0].removeprefix("sip:")
        source = f"{call.source[0]}:{call.source[1]}"
        entry = Entry(time.time(), kind, call.invite.call_id or "", number, status, source)
        self.journal.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    async def start(self, host: str = "127.0.0.1", port: int = 5090) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        endpoint = loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self.transport, _ = await endpoint
        self.address = self.transport.get_extra_info("sockname")[:2]
        return self.address

    def close(self) -> None:
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()
        if self.transport is not None:
            self.transport.close()

    # --- receiving ------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source) -> None:
        try:
            message = parse(data)
        except ParseError as error:
            log.info("demo PBX: malformed SIP from %s: %s", source, error)
            return
        if isinstance(message, Response):
            future = self.pending.pop(message.branch or "", None)
            if future is not None and not future.done() and message.status >= 200:
                future.set_result(message)
            elif future is not None and message.status < 200:
                self.pending[message.branch] = future  # wait on for the final response
            return
        handler = getattr(self, f"_on_{message.method.lower()}", None)
        if handler is None:
            self._reply(message, source, 405, "Method Not Allowed")
        else:
            handler(message, source)

    def _reply(
        self,
        request: Request,
        source,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        tag: str | None = None,
    ) -> bytes:
        raw = format_response(request, status, reason, list(headers), body, to_tag=tag)
        self._send(raw, source)
        return raw

    def _send(self, raw: bytes, destination: tuple[str, int]) -> None:
        assert self.transport is not None, "the demo PBX has not started"
        self.transport.sendto(raw, destination)

    def _forget(self, call_id: str | None) -> None:
        self.calls.pop(call_id, None)

    # --- REGISTER ---------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.get("authorization")
        if not header:
            return False
        try:
            answer = parse_challenge(header).params
        except ParseError:
            return False
        if answer.get("nonce") not in self.nonces or answer.get("username") != self.username:
            return False
        expected = digest_response(
            "MD5",
            self.username,
            REALM,
            self.password,
            answer["nonce"],
            request.method,
            answer.get("uri", ""),
            qop=answer.get("qop"),
            nc=answer.get("nc", ""),
            cnonce=answer.get("cnonce", ""),
        )
        return secrets.compare_digest(expected, answer.get("response", ""))

    def _on_register(self, request: Request, source) -> None:
        if not self._authorized(request):
            nonce = secrets.token_hex(16)
            self.nonces.add(nonce)
            challenge = f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
            self.stats["register_challenged"] += 1
            self._reply(
                request,
                source,
                401,
                "Unauthorized",
                [("WWW-Authenticate", challenge)],
                tag=secrets.token_hex(4),
            )
            return
        self.stats["registered"] += 1
        expires = request.expires if request.expires is not None else 3600
        contact = request.get("contact") or ""
        self._reply(
            request,
            source,
            200,
            "OK",
            [("Contact", f"{contact};expires={expires}"), ("Expires", str(expires))],
            tag=secrets.token_hex(4),
        )

    def _on_options(self, request: Request, source) -> None:
        self.stats["options"] += 1
        allow = "INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS, REGISTER"
        self._reply(request, source, 200, "OK", [("Allow", allow)])

    # --- calls ------------------------------------------------------------------------------

    def _on_invite(self, request: Request, source) -> None:
        call = self.calls.get(request.call_id)
        if call is not None:  # a retransmission: answer as before
            if call.final is not None and request.to_tag is None:
                self._send(call.final, source)
            elif request.to_tag is not None:  # a re-INVITE: keep the session
                self._reply(
                    request,
                    source,
                    200,
                    "OK",
                    [("Contact", self._contact())],
                    self._sdp(),
                    tag=call.tag,
                )
            return
        number = request.uri.split("@")[0].removeprefix("sip:")
        call = _Call(request, source, secrets.token_hex(4), self.behaviour.fate(self.rng, number))
        self.calls[request.call_id] = call
        self.stats["invites"] += 1
        self.record("invite", call)
        self._reply(request, source, 100, "Trying")
        call.task = asyncio.ensure_future(self._customer(call))

    async def _customer(self, call: _Call) -> None:
        invite, source = call.invite, call.source
        try:
            if call.fate == UNAVAILABLE:
                await asyncio.sleep(self.rng.uniform(0.1, 0.5))
                self._final(call, 480, "Temporarily Unavailable")
                return
            self._reply(
                invite, source, 180, "Ringing", [("Contact", self._contact())], tag=call.tag
            )
            if call.fate == NO_ANSWER:  # rings until the dialer CANCELs, or the limit
                await asyncio.sleep(self.behaviour.ring_limit)
                self._final(call, 408, "Request Timeout")
                return
            await asyncio.sleep(self.behaviour.ring_time(self.rng))
            if call.fate == BUSY:
                self._final(call, 486, "Busy Here")
                return
            headers = [("Contact", self._contact()), ("Content-Type", "application/sdp")]
            final = self._final(call, 200, "OK", headers, self._sdp())
            self.stats["answered"] += 1
            interval = 0.5
            while not call.acked.is_set() and interval < 8:  # 2xx until ACK (13.3.1.4)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):  # a cancel (BYE, CANCEL) goes through
                        await call.acked.wait()
                if not call.acked.is_set():
                    self._send(final, source)
                    interval *= 2
            if not call.acked.is_set():  # the dialer never ACKed: the call is over here
                call.ended = True
                self.record("no_ack", call)
        except asyncio.CancelledError:
            pass

    def _final(self, call: _Call, status: int, reason: str, headers=(), body=b"") -> bytes:
        self.stats[f"final_{status}"] += 1
        final = call.final = self._reply(
            call.invite, call.source, status, reason, headers, body, tag=call.tag
        )
        self.record("answered" if status < 300 else "final", call, status)
        if status >= 300:
            asyncio.get_running_loop().call_later(32, self._forget, call.invite.call_id)
        return final

    def _on_ack(self, request: Request, source) -> None:
        call = self.calls.get(request.call_id)
        if call is not None:
            call.acked.set()

    def _on_cancel(self, request: Request, source) -> None:
        call = self.calls.get(request.call_id)
        self._reply(
            request,
            source,
            200 if call else 481,
            "OK" if call else "Call/Transaction Does Not Exist",
        )
        if call is not None and call.final is None:
            if call.task is not None:
                call.task.cancel()
            self.stats["cancelled"] += 1
            self.record("cancel", call)
            call.final = self._reply(
                call.invite, call.source, 487, "Request Terminated", tag=call.tag
            )
            asyncio.get_running_loop().call_later(32, self._forget, call.invite.call_id)

    def _on_bye(self, request: Request, source) -> None:
        call = self.calls.pop(request.call_id, None)
        self._reply(
            request,
            source,
            200 if call else 481,
            "OK" if call else "Call/Transaction Does Not Exist",
        )
        if call is not None:
            if not call.ended:
                self.record("bye", call)
            call.ended = True
            if call.task is not None:
                call.task.cancel()

    def _on_notify(self, request: Request, source) -> None:
        self._reply(request, source, 200, "OK")

    # --- transfer ---------------------------------------------------------------------------

    def _on_refer(self, request: Request, source) -> None:
        call = self.calls.get(request.call_id)
        if call is None:
            self._reply(request, source, 481, "Call/Transaction Does Not Exist")
            return
        target = request.refer_to
        extension = target.uri.removeprefix("sip:").split("@")[0] if target else ""
        self._reply(request, source, 202, "Accepted", [("Contact", self._contact())])
        self.stats["refers"] += 1
        self.record("refer", call)
        call.task = asyncio.ensure_future(self._transfer(call, extension))

    async def _transfer(self, call: _Call, extension: str) -> None:
        try:
            await self._notify(call, "100 Trying", "active;expires=60")
            await asyncio.sleep(self.behaviour.transfer_delay)
            if extension in self.behaviour.unreachable_extensions:
                self.stats["transfers_failed"] += 1
                await self._notify(call, "480 Temporarily Unavailable", "terminated")
                return  # the dialer leaves the customer with BYE
            await self._notify(call, "200 OK", "terminated;reason=noresource")
            self.stats["transferred"] += 1
            if not call.ended:  # the customer talks to the operator now; our leg ends
                call.ended = True
                self.record("transferred", call)
                await self._request(call, "BYE", [])
                self.calls.pop(call.invite.call_id, None)
        except asyncio.CancelledError:
            pass

    async def _notify(self, call: _Call, status: str, state: str) -> None:
        body = f"SIP/2.0 {status}\r\n".encode()
        await self._request(
            call,
            "NOTIFY",
            [
                ("Event", "refer"),
                ("Subscription-State", state),
                ("Content-Type", "message/sipfrag;version=2.0"),
            ],
            body,
        )

    async def _request(self, call: _Call, method: str, headers, body: bytes = b""):
        """A request of ours inside the call's dialog, sent again until answered."""
        invite = call.invite
        call.seq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        host, port = self.address
        contact = invite.contact.uri if invite.contact else invite.get("from") or ""
        head = [
            ("Via", f"SIP/2.0/UDP {host}:{port};branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"{invite.get('to')};tag={call.tag}"),
            ("To", invite.get("from")),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{call.seq} {method}"),
            ("Contact", self._contact()),
            *headers,
        ]
        raw = format_request(method, contact, head, body)
        future = asyncio.get_running_loop().create_future()
        self.pending[branch] = future
        interval = 0.5
        try:
            while interval <= 4:
                self._send(raw, call.source)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        return await asyncio.shield(future)
                interval *= 2
            return None
        finally:
            self.pending.pop(branch, None)

    # --- bits -------------------------------------------------------------------------------

    def _contact(self) -> str:
        host, port = self.address
        return f"<sip:pbx@{host}:{port}>"

    def _sdp(self) -> bytes:
        host = self.address[0]
        return (
            f"v=0\r\no=pbx 1 1 IN IP4 {host}\r\ns=demo\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        ).encode()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autocall demo-pbx", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5090)
    parser.add_argument("--user", default="demo", help="the SIP account the dialer registers")
    parser.add_argument("--password", default="demo")
    parser.add_argument("--answer", type=float, default=0.55, help="share of customers who answer")
    parser.add_argument("--busy", type=float, default=0.15)
    parser.add_argument("--no-answer", type=float, default=0.15)
    parser.add_argument("--unavailable", type=float, default=0.15)
    parser.add_argument("--ring", default="1-5", metavar="MIN-MAX", help="ring time in seconds")
    parser.add_argument(
        "--unreachable-extension",
        action="append",
        default=[],
        help="an operator's extension whose phone cannot be reached",
    )
    parser.add_argument(
        "--by-last-digit",
        action="store_true",
        help="2 busy, 3 no answer, 4 unreachable, else answer",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--journal",
        default=None,
        metavar="FILE",
        help="write every call's INVITE and end to FILE as JSON lines",
    )


def behaviour_from(args: argparse.Namespace) -> Behaviour:
    low, _, high = args.ring.partition("-")
    return Behaviour(
        answer=args.answer,
        busy=args.busy,
        no_answer=args.no_answer,
        unavailable=args.unavailable,
        ring_min=float(low),
        ring_max=float(high or low),
        unreachable_extensions=frozenset(args.unreachable_extension),
        by_last_digit=args.by_last_digit,
    )


async def serve(args: argparse.Namespace) -> None:
    journal = open(args.journal, "a", buffering=1) if args.journal else None  # noqa: SIM115

    def write(entry: Entry) -> None:
        assert journal is not None
        journal.write(json.dumps(entry.__dict__) + "\n")

    pbx = DemoPBX(
        args.user,
        args.password,
        behaviour_from(args),
        seed=args.seed,
        on_entry=write if journal else None,
    )
    host, port = await pbx.start(args.host, args.port)
    print(f"demo PBX on {host}:{port} (account {args.user})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        pbx.close()
        if journal is not None:
            journal.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
