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
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from engine import logs
from engine.outcomes import Detail, Outcome, TransferResult
from engine.sip import Request, Response
from engine.sip.auth import Credentials, DigestClient, choose
from engine.sip.dialog import Dialog
from engine.sip.message import format_response
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
        self._invite_tail = f"Contact: {self._contact}\r\nAllow: {ALLOW}\r\n"
        self._user_agent_line = f"User-Agent: {self.user_agent}\r\n"
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
        head = "".join([f"{name}: {value}\r\n" for name, value in headers])
        return self.send_head(method, uri, head, body, on_response, on_timeout, branch)

    def send_head(self, method: str, uri: str, head: str, body: bytes,
                  on_response: Callable, on_timeout: Callable,
                  branch: str | None = None) -> ClientTransaction:  # fmt: skip
        """`send`, with the headers below our Via already written out (each line ending in
        CRLF): the calls keep theirs prepared."""
        branch = branch or new_branch()
        raw = (
            f"{method} {uri} SIP/2.0\r\nVia: {self._via_head}{branch};rport\r\n{head}"
            f"{self._user_agent_line}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return self.layer.send_request(method, branch, raw, self.destination, on_response,
                                       on_timeout)  # fmt: skip

    async def transact(self, method: str, uri: str, headers: list[tuple[str, str]],
                       next_seq: Callable[[], int]) -> Response | None:  # fmt: skip
        """Send a non-INVITE request and wait for its final response (see `request`); None
        when nothing came back before Timer F."""
        done = asyncio.get_running_loop().create_future()

        def settle(response: Response | None) -> None:
            if not done.done():
                done.set_result(response)

        self.request(method, uri, headers, next_seq, settle)
        return await done

    def request(self, method: str, uri: str, headers: list[tuple[str, str]],
                next_seq: Callable[[], int],
                on_final: Callable[[Response | None], None]) -> None:  # fmt: skip
        """Send a non-INVITE request and call `on_final` with its final response (None when
        nothing came back before Timer F), answering the PBX's digest challenge once (again
        only when it says the nonce was stale); the request sent again takes its CSeq number
        from `next_seq`."""
        _Transact(self, method, uri, headers, next_seq, on_final).send()

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
        attempt's outcome and timings.

        The call runs as callbacks of its transactions, dialog and timers (`Call`): this
        coroutine only waits for its end, and runs the operator picker when there is one."""
        call = Call(self, target_uri, refer_to, ring_timeout, transfer_timeout, bye_grace,
                    refer_headers)  # fmt: skip
        self._calls[call.call_id] = call
        try:
            call.start()
            while (await call.waiter) is _PICK:
                call.waiter = asyncio.get_running_loop().create_future()
                call.refer_chosen(await call.refer_to())
            return call.attempt
        finally:
            call.state = _OVER  # whatever ended it (cancelled, a picker that raised)
            call.set_deadline(None)
            if self._calls.get(call.call_id) is call:
                del self._calls[call.call_id]

    def end_calls(self, grace: float = 1.0) -> int:
        """The engine stops: end every call of this user agent within `grace` seconds, as
        `Call.end` says. Returns how many calls were still going."""
        calls = list(self._calls.values())
        for call in calls:
            call.end(grace)
        return len(calls)

    def _call_deadline(self, call_id: str, due: float) -> None:
        """A call's deadline (ring timeout, transfer timeout...) came: tell it, unless it has
        set another since."""
        call = self._calls.get(call_id)
        if call is not None and call._deadline == due:
            call._deadline = None
            call.event(_DEADLINE)

    # --- incoming ----------------------------------------------------------------------------

    def _on_message(self, msg: Request | Response, source: Address) -> None:
        if type(msg) is Response:
            self.layer.receive_response(msg)
        else:
            self._on_request(msg, source)

    def _on_request(self, request: Request, source: Address) -> None:
        tx = self.layer.receive_request(request, source)
        if tx is None:  # an ACK, or a retransmission (answered again by the layer)
            return
        call = self._calls.get(request.call_id or "")
        dialog = None if call is None else call.dialog
        # The Call-ID matched: the tags say whether it is the dialog's (Dialog.matches).
        if (dialog is not None and request.to_tag == dialog.local_tag
                and request.from_tag == dialog.remote_tag):  # fmt: skip
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


class _Transact:
    """A non-INVITE request followed to its final response by callbacks: sent again once
    with credentials for a challenge (again only for a stale nonce), three sends at most."""

    __slots__ = ("authorization", "headers", "method", "next_seq", "on_final", "sends", "ua",
                 "uri")  # fmt: skip

    def __init__(self, ua: UserAgent, method: str, uri: str, headers: list[tuple[str, str]],
                 next_seq: Callable[[], int],
                 on_final: Callable[[Response | None], None]):  # fmt: skip
        self.ua = ua
        self.method = method
        self.uri = uri
        self.headers = headers
        self.next_seq = next_seq
        self.on_final = on_final
        self.authorization: tuple[str, str] | None = None
        self.sends = 0

    def send(self) -> None:
        self.sends += 1
        extra = [self.authorization] if self.authorization else []
        self.ua.send(self.method, self.uri, self.headers + extra, b"", self._on_response,
                     self._on_timeout)  # fmt: skip

    def _on_response(self, tx, response: Response) -> None:
        if response.status < 200:
            return
        if response.status in (401, 407) and self.sends < 3:
            answer = self.ua.answer_challenge(response, self.method, self.uri,
                                              stale_only=bool(self.authorization))  # fmt: skip
            if answer is not None:
                self.authorization = answer
                method = self.method
                self.headers = [(n, v) if n != "CSeq" else (n, f"{self.next_seq()} {method}")
                                for n, v in self.headers]  # fmt: skip
                self.send()
                return
        self.on_final(response)

    def _on_timeout(self, tx) -> None:
        self.on_final(None)


#: The end of a response without a body.
_NO_BODY = b"Content-Length: 0\r\n\r\n"

# What moves a call on (`Call.event`), and where it is (`Call.state`).
_INVITE, _INVITE_TIMEOUT, _DEADLINE = "invite", "invite_timeout", "deadline"
_REFER, _NOTIFY, _BYE = "refer", "notify", "bye"
_INVITING, _PICKING, _TRANSFERRING, _GRACE, _LEAVING, _OVER = range(6)
#: What `Call.waiter` says when the operator is to be picked (by `place_call`, in its task).
_PICK = "pick"


class Call:
    """One attempt, run as a small state machine: each event of its transactions, its
    dialog and its deadline moves it on in the callback that brings it, without a coroutine
    switch (`event`). `place_call` awaits `waiter`: set when the attempt is over, or to
    `_PICK` when the operator picker must run at the answer (events wait in `_held` then).

    inviting -> (picking) -> transferring -> (grace: waiting for the PBX's BYE) -> (leaving:
    our BYE) -> over.
    """

    __slots__ = ("_accepted", "_answered_challenge", "_bye_received", "_cancel_when_possible",
                 "_cancelled", "_deadline", "_deadline_number", "_deadline_queue", "_ending",
                 "_from", "_grace", "_held", "_provisional", "_refer_challenges", "_refer_extra",
                 "_seq", "_then", "_to", "attempt", "bye_grace", "call_id", "dialog", "from_tag",
                 "invite_tx", "refer_headers", "refer_to", "ring_timeout", "state",
                 "transfer_timeout", "ua", "waiter")  # fmt: skip

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
        self.waiter = asyncio.get_running_loop().create_future()
        self.state = _INVITING
        self.dialog: Dialog | None = None
        self.invite_tx: ClientTransaction | None = None
        # The INVITE's own values, for its CANCEL and the dialog (not parsed back).
        self._from = f'"{ua.account.display_name}" <{ua.aor}>;tag={self.from_tag}'
        self._to = f"<{target_uri}>"
        self._seq = 0
        self._deadline: float | None = None
        self._deadline_queue = None  # where the deadline's timer is, to take it out
        self._deadline_number = 0
        self._refer_challenges = 0
        self._provisional = self._cancelled = self._cancel_when_possible = False
        self._answered_challenge = self._accepted = self._bye_received = False
        self._held: list | None = None
        self._then: tuple[Outcome, Detail | None] | None = None
        self._ending = False  # the engine stops: `end`
        self._grace = 0.0

    def set_deadline(self, seconds: float | None) -> None:
        """From now on, a `_DEADLINE` event comes once `seconds` have passed (never, for None),
        and no earlier deadline comes any more (its timer is taken out). The timer is the user
        agent's (`UserAgent._call_deadline`)."""
        queue = self._deadline_queue
        if queue is not None:
            queue.cancel(self._deadline_number)
            self._deadline_queue = None
        if seconds is None:
            self._deadline = None
            return
        ua = self.ua
        queues = ua.layer.queues
        self._deadline = queues.add(seconds, ua._call_deadline, self.call_id)
        queue = self._deadline_queue = queues.last_queue
        self._deadline_number = queue.tail - 1

    # events from the transaction layer and the user agent

    def _on_invite_response(self, tx, response: Response) -> None:
        self.event(_INVITE, response)

    def _on_invite_timeout(self, tx) -> None:
        self.event(_INVITE_TIMEOUT)

    def _on_refer_response(self, tx, response: Response) -> None:
        if response.status >= 200:
            self.event(_REFER, response)

    def _on_refer_timeout(self, tx) -> None:
        self.event(_REFER)

    def on_request(self, request: Request, tx) -> None:
        """A request of the PBX inside our dialog: answered here, then told to the call."""
        method = request.method
        if method == "NOTIFY" or method == "BYE":
            tx.respond(request.response_head("SIP/2.0 200 OK") + _NO_BODY)
            self.event(_NOTIFY if method == "NOTIFY" else _BYE, request)
        elif method == "INVITE":  # a re-INVITE: our session does not change
            tx.respond(
                format_response(request, 200, "OK", [("Contact", self.ua.contact),
                                ("Content-Type", "application/sdp")], self.ua.sdp_offer()),
                reliable_2xx=True,
            )  # fmt: skip
        else:
            tx.respond(format_response(request, 405, "Method Not Allowed", [("Allow", ALLOW)]))

    def event(self, kind: str, msg=None) -> None:
        """Move the call on. A failure here ends the call with that error, for the caller of
        `place_call`, rather than in the transport's reader."""
        state = self.state
        try:
            if state == _TRANSFERRING:
                self._transferring(kind, msg)
            elif state == _INVITING:
                self._inviting(kind, msg)
            elif state == _GRACE:
                if kind == _BYE:
                    self._bye_received = True
                    self._leave()
                elif kind == _DEADLINE:
                    self._leave()
            elif state == _PICKING and kind in (_NOTIFY, _BYE):
                self._held.append((kind, msg))  # told once the REFER is out
            elif state == _LEAVING and kind == _DEADLINE and self._ending:
                self._finish(*self._then)  # the engine stops: no longer wait for our BYE's 200
            # leaving: only our BYE's transaction matters (`_left`); over: nothing does
        except Exception as error:
            self.state = _OVER
            if not self.waiter.done():
                self.waiter.set_exception(error)

    def end(self, grace: float) -> None:
        """The engine stops: CANCEL the call while it rings (at the first provisional response
        if none came yet), BYE it once answered unless the customer is already handed over (a
        REFER the PBX accepted, now or within `grace`), and be over within about `grace`
        seconds whatever the PBX says (our BYE's answer is not awaited longer). Such an
        attempt ends `technical_error` / `engine_stopped`; a handed-over one `answered`."""
        if self._ending or self.state == _OVER:
            return
        self._ending = True
        self._grace = grace
        state = self.state
        if state == _INVITING:
            if self._provisional and not self._cancelled:
                self._cancel()
            else:
                self._cancel_when_possible = True
            self.set_deadline(grace)
        elif state == _TRANSFERRING:
            if self._accepted:
                self._handed_over()
                self._leave()
            else:
                self.set_deadline(grace)  # the 202 or the NOTIFY may still come
        elif state == _GRACE:
            self._leave()
        elif state == _LEAVING:
            self.set_deadline(grace)
        # picking: `refer_chosen` leaves with BYE once the picker is done

    def _handed_over(self) -> None:
        """The PBX accepted our REFER: the customer is the PBX's now, whatever comes after."""
        if self.attempt.transfer_result is None:
            self.attempt.transfer_result = TransferResult.UNCONFIRMED
            self.attempt.transfer_result_at = time.time()

    # the attempt

    def start(self) -> None:
        self.attempt.invite_at = time.time()
        self._send_invite()
        self.set_deadline(self.ring_timeout)

    def _send_invite(self, authorization: tuple[str, str] | None = None) -> None:
        self._seq += 1
        ua = self.ua
        head = (
            f"Max-Forwards: 70\r\nFrom: {self._from}\r\nTo: {self._to}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {self._seq} INVITE\r\n{ua._invite_tail}"
            "Content-Type: application/sdp\r\n"
        )
        if authorization:
            head += f"{authorization[0]}: {authorization[1]}\r\n"
        self.invite_tx = ua.send_head("INVITE", self.attempt.dialed_uri, head, ua.sdp_offer(),
                                      self._on_invite_response,
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
        self.ua.send("CANCEL", self.attempt.dialed_uri, headers, b"", _ignore_response,
                     _ignore_timeout, branch=self.invite_tx.branch)  # fmt: skip
        self._cancelled = True
        self.set_deadline(self.ua.timers.b)

    def _finish(self, outcome: Outcome, detail: Detail | None = None) -> None:
        attempt = self.attempt
        attempt.outcome = outcome
        attempt.detail = detail
        attempt.end_at = time.time()
        self.state = _OVER
        self.set_deadline(None)
        calls = self.ua._calls
        if calls.get(self.call_id) is self:  # from now on the dialog is unknown here
            del calls[self.call_id]
        if not self.waiter.done():
            self.waiter.set_result(None)

    def _inviting(self, kind: str, response: Response | None) -> None:
        attempt = self.attempt
        if kind == _DEADLINE:
            if self._ending:  # the engine stops, and the PBX did not end the call in time
                self._finish(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
            elif self._cancelled:  # no final response 64*T1 after our CANCEL (section 9.1)
                self._finish(Outcome.NO_ANSWER, Detail.RING_TIMEOUT)
            elif self._provisional:
                self._cancel()
            else:
                self._cancel_when_possible = True  # CANCEL only after a provisional (9.1)
                self.set_deadline(None)
            return
        if kind == _INVITE_TIMEOUT:
            self._finish(Outcome.UNAVAILABLE, Detail.NO_RESPONSE)
            return
        if kind != _INVITE:
            return  # nothing else happens before there is a dialog
        status = response.status
        if status < 200:
            self._provisional = True
            if (status == 180 or status == 183) and attempt.ringing_at is None:
                attempt.ringing_at = time.time()
            if self._cancel_when_possible and not self._cancelled:
                self._cancel()
            return
        attempt.sip_code, attempt.sip_reason = status, response.reason
        if status == 401 or status == 407:
            answer = self.ua.answer_challenge(
                response, "INVITE", attempt.dialed_uri, stale_only=self._answered_challenge
            )
            if answer is not None:
                self._answered_challenge = True
                self._send_invite(answer)
                return
            self._finish(Outcome.TECHNICAL_ERROR, Detail.AUTH_FAILED)
            return
        if status >= 300:
            if self._cancelled and status == 487 and self._ending:
                self._finish(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
            elif self._cancelled and status == 487:
                self._finish(Outcome.NO_ANSWER, Detail.RING_TIMEOUT)
            else:
                self._finish(classify(status, attempt.ringing_at is not None))
            return
        self._answered(response)

    def _answered(self, response: Response) -> None:
        """200 OK: ACK at once, then REFER to the operator (picked now, when a picker
        chooses)."""
        attempt = self.attempt
        attempt.answer_at = time.time()
        ua = self.ua
        self.dialog = dialog = Dialog.from_2xx(self.call_id, self.from_tag, self._from, self._seq,
                                               attempt.dialed_uri, response)  # fmt: skip
        ack = (
            f"ACK {dialog.remote_target} SIP/2.0\r\nVia: {ua.via(new_branch())}\r\n"
            f"{dialog.head}CSeq: {dialog.local_seq} ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        ua.transport.send(ack, ua.destination)
        # The transaction ACKs the PBX's 2xx copies from now on, without this call.
        self.invite_tx.accept(ack)
        if self._ending:  # answered as the engine stops: nobody will take the customer
            self._leave_with_bye(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
        elif isinstance(self.refer_to, str):
            self.refer_chosen(self.refer_to)
        else:  # the picker runs in place_call's task; what the PBX says meanwhile waits
            self.state = _PICKING
            self._held = []
            self.waiter.set_result(_PICK)

    def refer_chosen(self, refer_to: str | tuple[str, list] | None) -> None:
        """The operator to transfer to (None: nobody is free): REFER, and follow it."""
        if self.state == _OVER:  # ended while the picker ran: place_call must not wait on
            if not self.waiter.done():
                self.waiter.set_result(None)
            return
        attempt = self.attempt
        if self._ending:  # the engine stopped while the picker ran: no REFER
            self._leave_with_bye(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
            return
        if refer_to is None:
            self._leave_with_bye(Outcome.TECHNICAL_ERROR, Detail.NO_FREE_OPERATOR)
            return
        extra = self.refer_headers
        if isinstance(refer_to, tuple):  # the picker chose the headers with the target
            refer_to, extra = refer_to
        attempt.refer_to = refer_to
        self._refer_extra = "".join(
            [f"Contact: {self.ua.contact}\r\nRefer-To: <{refer_to}>\r\n"]
            + [f"{name}: {value}\r\n" for name, value in extra]
        )
        self._send_refer()
        attempt.refer_at = time.time()
        self.set_deadline(self.transfer_timeout)
        self.state = _TRANSFERRING
        held, self._held = self._held, None
        for kind, msg in held or ():
            self.event(kind, msg)

    def _transferring(self, kind: str, msg) -> None:
        attempt = self.attempt
        if kind == _REFER:
            if msg is not None and msg.status in (401, 407) and self._answer_refer(msg):
                return
            if msg is None and not self._accepted:
                self._transfer_failed(None, Detail.TRANSFER_TIMEOUT)
            elif msg is not None and msg.status >= 300:
                self._transfer_failed(msg, Detail.REFER_REFUSED)
            else:
                self._accepted = True
        elif kind == _NOTIFY:
            self._accepted = True  # a NOTIFY may overtake the 202 (RFC 3515 section 2.4.4)
            status = msg.sipfrag
            if status is not None and status.status >= 200:
                attempt.transfer_sip_code, attempt.transfer_sip_reason = status
                attempt.transfer_result_at = time.time()
                if status.status < 300:
                    attempt.transfer_result = TransferResult.SUCCEEDED
                else:
                    self._transfer_failed(None, Detail.TRANSFER_FAILED)
        elif kind == _BYE:
            self._bye_received = True
            if self._accepted:  # the PBX took the call away without the final NOTIFY
                attempt.transfer_result = TransferResult.UNCONFIRMED
                attempt.transfer_result_at = time.time()
            else:
                attempt.transfer_result = TransferResult.FAILED
                self._finish(Outcome.TECHNICAL_ERROR, Detail.CUSTOMER_HUNG_UP)
                return
        elif kind == _DEADLINE:
            self._transfer_failed(None, Detail.ENGINE_STOPPED if self._ending
                                  else Detail.TRANSFER_TIMEOUT)  # fmt: skip
        if self._ending and self._accepted:
            self._handed_over()
        if attempt.transfer_result is None:
            return
        if (attempt.transfer_result != TransferResult.FAILED and not self._bye_received
                and not self._ending):  # fmt: skip
            # After a transfer the PBX usually ends our leg itself (Asterisk does); give it a
            # moment before we leave with our own BYE, as RFC 5589's flows do.
            self.state = _GRACE
            self.set_deadline(self.bye_grace)
            return
        self._leave()

    def _leave(self) -> None:
        """The transfer is over (and the grace for the PBX's BYE, if any): BYE unless the PBX
        ended the call, and finish."""
        if self.attempt.transfer_result == TransferResult.FAILED:
            then = (Outcome.TECHNICAL_ERROR, self.attempt.detail)
        else:
            then = (Outcome.ANSWERED, None)
        if self._bye_received:
            self._finish(*then)
        else:
            self._leave_with_bye(*then)

    def _leave_with_bye(self, outcome: Outcome, detail: Detail | None) -> None:
        self.state = _LEAVING
        self._then = (outcome, detail)
        if self._ending:  # over within the grace, answered or not
            self.set_deadline(self._grace)
        dialog = self.dialog
        self.ua.request("BYE", dialog.remote_target, dialog.headers("BYE"), dialog.next_seq,
                        self._left)  # fmt: skip

    def _left(self, response: Response | None) -> None:
        """Our BYE has its final response (or Timer F came)."""
        if self.state == _LEAVING:
            self._finish(*self._then)

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
        """REFER inside the dialog, followed by this call's events."""
        dialog = self.dialog
        head = f"{dialog.head}CSeq: {dialog.next_seq()} REFER\r\n{self._refer_extra}"
        if authorization:
            head += f"{authorization[0]}: {authorization[1]}\r\n"
        self.ua.send_head("REFER", dialog.remote_target, head, b"", self._on_refer_response,
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


def _ignore_response(tx, response: Response) -> None:
    pass


def _ignore_timeout(tx) -> None:
    pass
