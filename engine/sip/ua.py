"""The user agent: one SIP account of a tenant, registered on the tenant's PBX, placing calls
and transferring the answered ones to an operator with REFER.

It plays one role only (see docs/sip.md): it sends REGISTER, INVITE / CANCEL / ACK / BYE and
REFER, and it answers what a PBX sends inside our calls (NOTIFY, BYE, re-INVITE) and OPTIONS.
Everything comes from and goes to the PBX (or the outbound proxy): requests and responses
from any other address are dropped, and credentials are only ever sent in answer to a
challenge of our own transaction from the PBX, for the expected realm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from engine import logs
from engine.outcomes import Detail, Outcome, TransferResult
from engine.sip import Request, Response
from engine.sip.auth import Credentials, DigestClient, choose
from engine.sip.dialog import Dialog
from engine.sip.message import format_request, format_response
from engine.sip.transaction import (
    DEFAULT_TIMERS,
    ClientTransaction,
    Timers,
    TransactionLayer,
    new_branch,
    token_hex,
)
from engine.sip.transport import Address, Transport

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS"


def classify(status: int, rang: bool) -> Outcome:
    """The outcome of a final response to our INVITE (no 2xx)."""
    if status in (486, 600):
        return Outcome.BUSY
    if status in (408, 487) or (status == 480 and rang):
        return Outcome.NO_ANSWER
    if status in (404, 480, 503, 604):
        return Outcome.UNAVAILABLE
    return Outcome.TECHNICAL_ERROR


@dataclass(frozen=True)
class Account:
    """The tenant's SIP account on its PBX."""

    host: str
    port: int = 5060
    username: str = ""
    password: str = field(default="", repr=False)
    auth_username: str | None = None
    realm: str | None = None
    outbound_proxy: Address | None = None
    display_name: str = "AutoCall"

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.username, self.password, self.auth_username, self.realm)


@dataclass
class Attempt:
    """What the user agent concluded about one call attempt: the stuff of a CDR."""

    dialed_uri: str
    call_id: str = ""
    outcome: Outcome | None = None
    detail: Detail | None = None
    sip_code: int | None = None  # the final response to the INVITE
    sip_reason: str | None = None
    refer_to: str | None = None
    transfer_result: TransferResult | None = None
    transfer_sip_code: int | None = None  # REFER's refusal, or the status in the final NOTIFY
    transfer_sip_reason: str | None = None
    invite_at: float | None = None  # wall-clock seconds
    ringing_at: float | None = None
    answer_at: float | None = None
    refer_at: float | None = None
    transfer_result_at: float | None = None
    end_at: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Registration:
    """The state of our registration, in words an admin understands."""

    state: str = "unregistered"  # registering / registered / failed
    code: int | None = None
    reason: str | None = None
    detail: str = "not registered yet"
    expires: int | None = None
    at: float | None = None


class _Events:
    """What happens to a call, in arrival order, for the coroutine that runs it; and whether
    the call's current deadline has passed (set by the user agent's timer)."""

    __slots__ = ("_items", "_waiter", "expired")

    def __init__(self):
        self._items: deque = deque()
        self._waiter: asyncio.Future | None = None
        self.expired = False

    def put(self, kind: str, item=None) -> None:
        self._items.append((kind, item))
        self._wake()

    def expire(self) -> None:
        self.expired = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        """The next event; None when there is none and the deadline has passed."""
        while not self._items:
            if self.expired:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class UserAgent:
    """One tenant's SIP user agent on one UDP socket."""

    def __init__(self, account: Account, *, local_host: str = "0.0.0.0", local_port: int = 0,
                 timers: Timers = DEFAULT_TIMERS, user_agent: str = "AutoCall Cloud"):  # fmt: skip
        self.account = account
        self.local_host = local_host
        self.local_port = local_port
        self.timers = timers
        self.user_agent = user_agent
        self.digest = DigestClient(account.credentials)
        self.registration = Registration()
        self.registration_failures = 0  # for the metrics (engine/metrics.py)
        self._calls: dict[str, Call] = {}
        self._register_call_id = f"{token_hex(10)}@autocall"
        self._register_tag = token_hex(6)
        self._register_seq = 0
        self._keeper: asyncio.Task | None = None

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.account.outbound_proxy
        # With an outbound proxy every message goes through it, and only it may talk to us;
        # the PBX's name then only appears in URIs and need not resolve here.
        self.destination = await self._resolve(*(proxy or (self.account.host, self.account.port)))
        self.allowed_sources = {self.destination}
        self.transport = await Transport.open(
            self._on_message, self.local_host, self.local_port, self.allowed_sources.__contains__
        )
        self.layer = TransactionLayer(self.transport, self.timers)
        self._call_deadline = self._call_deadline  # bound once: the layer's timers key on it
        self.contact_host = self._address_towards(self.destination)
        self.port = self.transport.local_address[1]
        family = socket.AF_INET6 if ":" in self.contact_host else socket.AF_INET
        self._rtp = socket.socket(family, socket.SOCK_DGRAM)  # held for the SDP; never read
        self._rtp.bind((self.contact_host, 0))
        self._sdp_version = int(loop.time())
        # What every request repeats, made once.
        self._via_head = f"SIP/2.0/UDP {_host(self.contact_host)}:{self.port};branch="
        self._contact = f"<sip:{self.account.username}@{_host(self.contact_host)}:{self.port}>"
        self._sdp = self._make_sdp_offer()

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        self.layer.close()
        self.transport.close()
        self._rtp.close()

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @staticmethod
    async def _resolve(host: str, port: int) -> Address:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        return infos[0][4][:2]

    def _address_towards(self, destination: Address) -> str:
        """Our address as the PBX sees it: the wildcard bind resolved by the routing table."""
        bound = self.transport.local_address[0]
        if bound not in ("0.0.0.0", "::"):
            return bound
        family = socket.AF_INET6 if ":" in destination[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(destination)  # no packet is sent for UDP
            return probe.getsockname()[0]

    # --- building requests -------------------------------------------------------------------

    def via(self, branch: str) -> str:
        return f"{self._via_head}{branch};rport"

    @property
    def contact(self) -> str:
        return self._contact

    @property
    def aor(self) -> str:
        """Our address of record at the PBX."""
        return f"sip:{self.account.username}@{_host(self.account.host)}"

    def sdp_offer(self) -> bytes:
        """Our session: the same for every call and every re-INVITE of this user agent."""
        return self._sdp

    def _make_sdp_offer(self) -> bytes:
        ip = self.contact_host
        kind = "IP6" if ":" in ip else "IP4"
        port = self._rtp.getsockname()[1]
        v = self._sdp_version
        return (
            f"v=0\r\no=autocall {v} {v} IN {kind} {ip}\r\ns=AutoCall\r\nc=IN {kind} {ip}\r\n"
            f"t=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=fmtp:101 0-16\r\na=sendrecv\r\n"
        ).encode()

    def send(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes,
             on_response: Callable, on_timeout: Callable,
             branch: str | None = None) -> ClientTransaction:  # fmt: skip
        """Start a client transaction for a request: our Via (with a new branch unless one is
        given: a CANCEL's is its INVITE's) goes on top of `headers`."""
        branch = branch or new_branch()
        raw = format_request(method, uri, [("Via", self.via(branch)), *headers,
                                           ("User-Agent", self.user_agent)], body)  # fmt: skip
        return self.layer.send_request(method, branch, raw, self.destination, on_response,
                                       on_timeout)  # fmt: skip

    async def transact(self, method: str, uri: str, headers: list[tuple[str, str]],
                       next_seq: Callable[[], int]) -> Response | None:  # fmt: skip
        """Send a non-INVITE request and wait for its final response, answering the PBX's
        digest challenge once (again only when it says the nonce was stale); the request
        sent again takes its CSeq number from `next_seq`. None when nothing came back
        before Timer F."""
        authorization = None
        for _ in range(3):
            extra = [authorization] if authorization else []
            done, on_response, on_timeout = _final_response()
            self.send(method, uri, headers + extra, b"", on_response, on_timeout)
            response = await done
            if response is None or response.status not in (401, 407):
                return response
            answer = self.answer_challenge(response, method, uri, stale_only=bool(authorization))
            if answer is None:
                return response
            authorization = answer
            headers = [(n, v) if n != "CSeq" else (n, f"{next_seq()} {method}") for n, v in headers]
        return response

    def answer_challenge(self, response: Response, method: str, uri: str,
                         stale_only: bool) -> tuple[str, str] | None:  # fmt: skip
        """The (Proxy-)Authorization header answering a 401/407 to our request, or None
        when it must not be answered: unknown algorithm, a realm other than the expected
        one, or a second challenge after we already answered one (wrong credentials)."""
        proxy = response.status == 407
        challenge = choose(response.proxy_authenticate if proxy else response.www_authenticate)
        if challenge is None:
            return None
        if self.account.realm and challenge.realm != self.account.realm:
            log.warning("not answering a challenge for realm %r", challenge.realm)
            return None
        if stale_only and challenge.params.get("stale", "").lower() != "true":
            return None
        name = "Proxy-Authorization" if proxy else "Authorization"
        return (name, self.digest.authorization(challenge, method, uri))

    # --- registration ------------------------------------------------------------------------

    async def register(self, expires: int = 3600) -> Registration:
        """REGISTER once (with digest when challenged); the result is also kept in
        `self.registration`, worded for the admin."""
        registrar = f"sip:{_host(self.account.host)}:{self.account.port}"
        headers = [
            ("Max-Forwards", "70"),
            ("From", f"<{self.aor}>;tag={self._register_tag}"),
            ("To", f"<{self.aor}>"),
            ("Call-ID", self._register_call_id),
            ("CSeq", f"{self._next_register_seq()} REGISTER"),
            ("Contact", self.contact),
            ("Expires", str(expires)),
            ("Allow", ALLOW),
        ]
        self.registration.state = "registering"
        response = await self.transact("REGISTER", registrar, headers, self._next_register_seq)
        result = Registration(at=time.time())
        if response is None:
            result.state, result.detail = "failed", "the PBX did not answer"
        else:
            result.code, result.reason = response.status, response.reason
            if 200 <= response.status < 300:
                granted = response.expires
                contact = response.contact
                if contact and contact.params.get("expires", "").isdigit():
                    granted = int(contact.params["expires"])
                result.state, result.expires = "registered", granted or expires
                result.detail = "registered"
            elif response.status in (401, 407):
                result.state, result.detail = "failed", "wrong username or password"
            elif response.status == 403:
                result.state, result.detail = "failed", "the PBX refused this account (403)"
            else:
                result.state = "failed"
                result.detail = f"the PBX answered {response.status} {response.reason}"
        self.registration = result
        self.registration_failures += result.state == "failed"
        return result

    def _next_register_seq(self) -> int:
        self._register_seq += 1
        return self._register_seq

    def keep_registered(self, expires: int = 3600, max_backoff: float = 300.0) -> None:
        """Register now and refresh before expiry; after a failure retry with backoff."""

        async def keeper():
            backoff = 1.0
            while True:
                result = await self.register(expires)
                if result.state == "registered":
                    backoff = 1.0
                    await asyncio.sleep(max(1.0, (result.expires or expires) * 0.8))
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, max_backoff)

        self._keeper = asyncio.get_running_loop().create_task(keeper())

    # --- calls -------------------------------------------------------------------------------

    async def place_call(
        self,
        target_uri: str,
        refer_to: str | Callable[[], Awaitable[str | tuple[str, list] | None]],
        *,
        ring_timeout: float = 30.0,
        transfer_timeout: float = 10.0,
        bye_grace: float = 1.0,
        refer_headers: list[tuple[str, str]] = (),
    ) -> Attempt:
        """Dial `target_uri`; when answered, transfer to `refer_to` (a URI, or a coroutine
        function that picks one at the moment of answer, optionally with the REFER's extra
        headers as `(uri, headers)`, and may return None: no free operator). Returns the
        attempt's outcome and timings."""
        call = Call(self, target_uri, refer_to, ring_timeout, transfer_timeout, bye_grace,
                    refer_headers)  # fmt: skip
        self._calls[call.call_id] = call
        try:
            return await call.run()
        finally:
            self._calls.pop(call.call_id, None)

    def _call_deadline(self, call_id: str, due: float) -> None:
        """A call's deadline (ring timeout, transfer timeout...) came: tell it, unless it has
        set another since."""
        call = self._calls.get(call_id)
        if call is not None and call._deadline == due:
            call.events.expire()

    # --- incoming ----------------------------------------------------------------------------

    def _on_message(self, msg: Request | Response, source: Address) -> None:
        if isinstance(msg, Response):
            self.layer.receive_response(msg)
        else:
            self._on_request(msg, source)

    def _on_request(self, request: Request, source: Address) -> None:
        tx = self.layer.receive_request(request, source)
        if tx is None:  # an ACK, or a retransmission (answered again by the layer)
            return
        call = self._calls.get(request.call_id or "")
        if call is not None and call.dialog is not None and call.dialog.matches(request):
            call.on_request(request, tx)
        elif request.method == "OPTIONS":
            tx.respond(format_response(request, 200, "OK", [("Allow", ALLOW)],
                                       to_tag=token_hex(4)))  # fmt: skip
        elif request.method == "REFER":
            tx.respond(format_response(request, 403, "Forbidden", to_tag=token_hex(4)))
        elif request.method in ("BYE", "NOTIFY", "CANCEL") or request.to_tag:
            tx.respond(format_response(request, 481, "Call/Transaction Does Not Exist"))
        elif request.method == "INVITE":
            tx.respond(format_response(request, 403, "Forbidden", to_tag=token_hex(4)))
        else:
            tx.respond(format_response(request, 405, "Method Not Allowed", [("Allow", ALLOW)]))


def _final_response():
    """A future for a client transaction's final response (None on timeout), and the two
    callbacks that settle it."""
    done = asyncio.get_running_loop().create_future()

    def on_response(tx, response: Response) -> None:
        if response.status >= 200 and not done.done():
            done.set_result(response)

    def on_timeout(tx) -> None:
        if not done.done():
            done.set_result(None)

    return done, on_response, on_timeout


class Call:
    """One attempt, run as a coroutine over the events of its transactions and dialog."""

    def __init__(self, ua: UserAgent, target_uri: str, refer_to, ring_timeout: float,
                 transfer_timeout: float, bye_grace: float, refer_headers):  # fmt: skip
        self.ua = ua
        self.call_id = f"{token_hex(12)}@{ua.contact_host}"
        logs.bind(call_id=self.call_id)  # every later record of the call's task names it
        self.from_tag = token_hex(6)
        self.attempt = Attempt(target_uri, self.call_id)
        self.refer_to = refer_to
        self.ring_timeout = ring_timeout
        self.transfer_timeout = transfer_timeout
        self.bye_grace = bye_grace
        self.refer_headers = list(refer_headers)
        self.events = _Events()
        self.dialog: Dialog | None = None
        self.invite_tx: ClientTransaction | None = None
        # The INVITE's own values, for its CANCEL and the dialog (not parsed back).
        self._from = f'"{ua.account.display_name}" <{ua.aor}>;tag={self.from_tag}'
        self._to = f"<{target_uri}>"
        self._seq = 0
        self._deadline: float | None = None
        self._refer_challenges = 0

    def set_deadline(self, seconds: float | None) -> None:
        """From now on, `events.get()` says None once `seconds` have passed without an event
        (never, for None). The timer is the user agent's (`UserAgent._call_deadline`)."""
        self.events.expired = False
        ua = self.ua
        self._deadline = (
            None
            if seconds is None
            else ua.layer.queues.add(seconds, ua._call_deadline, self.call_id)
        )

    # events from the transaction layer and the user agent

    def _on_invite_response(self, tx, response: Response) -> None:
        self.events.put("invite", response)

    def _on_invite_timeout(self, tx) -> None:
        self.events.put("invite_timeout")

    def on_request(self, request: Request, tx) -> None:
        """A request of the PBX inside our dialog: answered here, then told to run()."""
        if request.method in ("NOTIFY", "BYE"):
            tx.respond(format_response(request, 200, "OK"))
            self.events.put(request.method.lower(), request)
        elif request.method == "INVITE":  # a re-INVITE: our session does not change
            tx.respond(
                format_response(request, 200, "OK", [("Contact", self.ua.contact),
                                ("Content-Type", "application/sdp")], self.ua.sdp_offer()),
                reliable_2xx=True,
            )  # fmt: skip
        else:
            tx.respond(format_response(request, 405, "Method Not Allowed", [("Allow", ALLOW)]))

    # the attempt

    def _send_invite(self, authorization: tuple[str, str] | None = None) -> None:
        self._seq += 1
        headers = [
            ("Max-Forwards", "70"),
            ("From", self._from),
            ("To", self._to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._seq} INVITE"),
            ("Contact", self.ua.contact),
            ("Allow", ALLOW),
            ("Content-Type", "application/sdp"),
        ]
        if authorization:
            headers.append(authorization)
        self.invite_tx = self.ua.send("INVITE", self.attempt.dialed_uri, headers,
                                      self.ua.sdp_offer(), self._on_invite_response,
                                      self._on_invite_timeout)  # fmt: skip

    def _cancel(self) -> None:
        """CANCEL the INVITE: same branch, Call-ID, From, To and CSeq number (section 9.1)."""
        headers = [
            ("Max-Forwards", "70"),
            ("From", self._from),
            ("To", self._to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._seq} CANCEL"),
        ]
        self.ua.send("CANCEL", self.attempt.dialed_uri, headers, b"", lambda tx, r: None,
                     lambda tx: None, branch=self.invite_tx.branch)  # fmt: skip

    def _finish(self, outcome: Outcome, detail: Detail | None = None) -> Attempt:
        self.attempt.outcome = outcome
        self.attempt.detail = detail
        self.attempt.end_at = time.time()
        return self.attempt

    async def run(self) -> Attempt:
        attempt = self.attempt
        attempt.invite_at = time.time()
        self._send_invite()
        self.set_deadline(self.ring_timeout)
        provisional = cancelled = cancel_when_possible = answered_challenge = False
        while True:
            event = await self.events.get()
            if event is None:
                if cancelled:  # no final response 64*T1 after our CANCEL (section 9.1)
                    return self._finish(Outcome.NO_ANSWER, Detail.RING_TIMEOUT)
                if provisional:
                    self._cancel()
                    cancelled = True
                    self.set_deadline(self.ua.timers.b)
                else:
                    cancel_when_possible = True  # CANCEL only after a provisional (9.1)
                    self.set_deadline(None)
                continue
            kind, response = event
            if kind == "invite_timeout":
                return self._finish(Outcome.UNAVAILABLE, Detail.NO_RESPONSE)
            if kind != "invite":
                continue  # nothing else happens before there is a dialog
            status = response.status
            if status < 200:
                provisional = True
                if status in (180, 183) and attempt.ringing_at is None:
                    attempt.ringing_at = time.time()
                if cancel_when_possible and not cancelled:
                    self._cancel()
                    cancelled = True
                    self.set_deadline(self.ua.timers.b)
                continue
            attempt.sip_code, attempt.sip_reason = status, response.reason
            if status in (401, 407):
                answer = self.ua.answer_challenge(
                    response, "INVITE", attempt.dialed_uri, stale_only=answered_challenge
                )
                if answer is not None:
                    answered_challenge = True
                    self._send_invite(answer)
                    continue
                return self._finish(Outcome.TECHNICAL_ERROR, Detail.AUTH_FAILED)
            if status >= 300:
                if cancelled and status == 487:
                    return self._finish(Outcome.NO_ANSWER, Detail.RING_TIMEOUT)
                return self._finish(classify(status, attempt.ringing_at is not None))
            return await self._answered(response)

    async def _answered(self, response: Response) -> Attempt:
        """200 OK: ACK at once, pick the operator, REFER, follow the NOTIFYs, leave."""
        attempt = self.attempt
        attempt.answer_at = time.time()
        self.dialog = dialog = Dialog.from_2xx(self.call_id, self.from_tag, self._from, self._seq,
                                               attempt.dialed_uri, response)  # fmt: skip
        ack_headers = [("Via", self.ua.via(new_branch())), *dialog.headers("ACK", dialog.local_seq)]
        ack = format_request("ACK", dialog.remote_target, ack_headers)
        self.ua.transport.send(ack, self.ua.destination)
        # The transaction ACKs the PBX's 2xx copies from now on, without this call.
        self.invite_tx.accept(ack)

        refer_to = self.refer_to if isinstance(self.refer_to, str) else await self.refer_to()
        if refer_to is None:
            await self._bye()
            return self._finish(Outcome.TECHNICAL_ERROR, Detail.NO_FREE_OPERATOR)
        extra = self.refer_headers
        if isinstance(refer_to, tuple):  # the picker chose the headers with the target
            refer_to, extra = refer_to
        attempt.refer_to = refer_to
        self._refer_extra = [("Contact", self.ua.contact), ("Refer-To", f"<{refer_to}>"), *extra]
        self._send_refer()
        attempt.refer_at = time.time()

        self.set_deadline(self.transfer_timeout)
        accepted = bye_received = False
        while attempt.transfer_result is None:
            event = await self.events.get()
            if event is None:
                self._transfer_failed(None, Detail.TRANSFER_TIMEOUT)
                break
            kind, msg = event
            if kind == "refer":
                if msg is not None and msg.status in (401, 407) and self._answer_refer(msg):
                    continue
                if msg is None and not accepted:
                    self._transfer_failed(None, Detail.TRANSFER_TIMEOUT)
                elif msg is not None and msg.status >= 300:
                    self._transfer_failed(msg, Detail.REFER_REFUSED)
                else:
                    accepted = True
            elif kind == "notify":
                accepted = True  # a NOTIFY may overtake the 202 (RFC 3515 section 2.4.4)
                status = msg.sipfrag
                if status is not None and status.status >= 200:
                    attempt.transfer_sip_code, attempt.transfer_sip_reason = status
                    attempt.transfer_result_at = time.time()
                    if status.status < 300:
                        attempt.transfer_result = TransferResult.SUCCEEDED
                    else:
                        self._transfer_failed(None, Detail.TRANSFER_FAILED)
            elif kind == "bye":
                bye_received = True
                if accepted:  # the PBX took the call away without the final NOTIFY
                    attempt.transfer_result = TransferResult.UNCONFIRMED
                    attempt.transfer_result_at = time.time()
                else:
                    attempt.transfer_result = TransferResult.FAILED
                    return self._finish(Outcome.TECHNICAL_ERROR, Detail.CUSTOMER_HUNG_UP)
        if attempt.transfer_result != TransferResult.FAILED and not bye_received:
            # After a transfer the PBX usually ends our leg itself (Asterisk does); give it a
            # moment before we leave with our own BYE, as RFC 5589's flows do.
            bye_received = await self._wait_for_bye(self.bye_grace)
        if not bye_received:
            await self._bye()
        if attempt.transfer_result == TransferResult.FAILED:
            return self._finish(Outcome.TECHNICAL_ERROR, attempt.detail)
        return self._finish(Outcome.ANSWERED)

    def _transfer_failed(self, response: Response | None, detail: Detail) -> None:
        attempt = self.attempt
        attempt.transfer_result = TransferResult.FAILED
        attempt.detail = detail
        attempt.transfer_result_at = time.time()
        if response is not None:
            attempt.transfer_sip_code, attempt.transfer_sip_reason = (
                response.status,
                response.reason,
            )

    def _send_refer(self, authorization: tuple[str, str] | None = None) -> None:
        """REFER inside the dialog, followed by this call's events (no task of its own)."""
        dialog = self.dialog
        headers = dialog.headers("REFER") + self._refer_extra
        if authorization:
            headers.append(authorization)
        self.ua.send("REFER", dialog.remote_target, headers, b"", self._on_refer_response,
                     self._on_refer_timeout)  # fmt: skip

    def _answer_refer(self, challenge: Response) -> bool:
        """REFER again with credentials for a 401/407 (once, and again only when the nonce
        was stale); False when the challenge must not be answered."""
        if self._refer_challenges >= 2:
            return False
        answer = self.ua.answer_challenge(challenge, "REFER", self.dialog.remote_target,
                                          stale_only=self._refer_challenges > 0)  # fmt: skip
        if answer is None:
            return False
        self._refer_challenges += 1
        self._send_refer(answer)
        return True

    def _on_refer_response(self, tx, response: Response) -> None:
        if response.status >= 200:
            self.events.put("refer", response)

    def _on_refer_timeout(self, tx) -> None:
        self.events.put("refer")

    async def _wait_for_bye(self, seconds: float) -> bool:
        self.set_deadline(seconds)
        while (event := await self.events.get()) is not None:
            if event[0] == "bye":
                return True
        return False

    async def _bye(self) -> None:
        dialog = self.dialog
        await self.ua.transact("BYE", dialog.remote_target, dialog.headers("BYE"), dialog.next_seq)
