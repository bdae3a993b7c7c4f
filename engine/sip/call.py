"""A call attempt of the user agent (engine/sip/ua.py), from INVITE to BYE with the transfer
to an operator by REFER, run as a small state machine of callbacks (`Call`), and what it
concludes (`CallRecord`: the stuff of a CDR).

INVITE (with digest when challenged), CANCEL at the ring timeout or when the engine stops,
ACK of the 2xx, REFER to the operator (RFC 3515) followed by the PBX's NOTIFYs
(message/sipfrag) to the transfer's result, and BYE: the PBX's, or ours after a grace
(RFC 5589). docs/sip.md draws the flow message by message.

The transfer stays part of this state machine rather than a module of its own: REFER and
NOTIFY move the same call through its `transferring` and `grace` states, on its dialog, its
attempt and its deadline, and leave it by the same BYE.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from engine import logs
from engine.outcomes import Detail, Outcome, TransferResult
from engine.sip import Request, Response, sdp
from engine.sip.dialog import Dialog
from engine.sip.message import format_response
from engine.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TimerQueue,
    new_branch,
    token_hex,
)

if TYPE_CHECKING:
    from engine.sip.ua import UserAgent

#: An operator to transfer to: the REFER's target, with its extra headers or not.
Target = str | tuple[str, list[tuple[str, str]]]
#: What picks the operator at the moment of answer (None: nobody is free).
Picker = Callable[[], Awaitable[Target | None]]
#: What hears that the customer hung up while the picker ran (UserAgent.place_call's
#: `on_hang_up`): a picker that holds the customer for an operator stops waiting.
OnHangUp = Callable[[], None]

#: Seconds the REFER's subscription stays alive after the wait for the transfer's result
#: ended without one (our BYE ends the dialog's invite usage, not its subscription usage:
#: RFC 5057). A PBX that passes the REFER on to the customer's phone says how it went only
#: when the operator answers; a final NOTIFY in this window is answered 200 and reported
#: (`LateResult`), a later one 481. Two minutes: longer than an operator's phone rings before
#: a PBX gives up on it (Asterisk's default dial timeout is a minute or so), short enough that
#: the user agent keeps no dialog for long (`UserAgent.late_window`).
LATE_WINDOW = 120.0

#: The methods the user agent understands (its INVITEs', REGISTERs' and 405s' Allow): a
#: call's, and OPTIONS.
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


@dataclass
class CallRecord:
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LateResult:
    """A transfer's result that came after its wait was over (a final NOTIFY in the late
    window): the call was written as timed out, and this corrects it."""

    call_id: str
    result: TransferResult  # succeeded or failed
    sip_code: int  # the status in the NOTIFY's sipfrag
    sip_reason: str
    at: float  # wall-clock seconds


#: What hears of a late result (UserAgent.place_call's `on_late_result`).
OnLateResult = Callable[[LateResult], None]


#: The end of a response without a body.
_NO_BODY = b"Content-Length: 0\r\n\r\n"

# What moves a call on (`Call.event`), and where it is (`Call.state`).
_INVITE, _INVITE_TIMEOUT, _DEADLINE = "invite", "invite_timeout", "deadline"
_REFER, _NOTIFY, _BYE = "refer", "notify", "bye"
_INVITING, _PICKING, _TRANSFERRING, _GRACE, _LEAVING, _OVER = range(6)
#: What `Call.waiter` says when the operator is to be picked (by `Call.run`, in its task).
_PICK = "pick"


class Call:
    """One attempt, run as a small state machine: each event of its transactions, its
    dialog and its deadline moves it on in the callback that brings it, without a coroutine
    switch (`event`). `run` (in UserAgent.place_call's task) awaits `waiter`: set when the
    attempt is over, or to `_PICK` when the operator picker must run at the answer (events
    wait in `_held` then).

    inviting -> (picking) -> transferring -> (grace: waiting for the PBX's BYE) -> (leaving:
    our BYE) -> over.
    """

    __slots__ = (
        "_accepted",
        "_answered_challenge",
        "_bye_received",
        "_cancel_when_possible",
        "_cancelled",
        "_deadline",
        "_deadline_number",
        "_deadline_queue",
        "_ending",
        "_from",
        "_grace",
        "_held",
        "_provisional",
        "_refer_challenges",
        "_refer_extra",
        "_sdp_sent",
        "_sdp_version",
        "_seq",
        "_then",
        "_to",
        "attempt",
        "bye_grace",
        "call_id",
        "destination",
        "dialog",
        "from_tag",
        "invite_tx",
        "on_hang_up",
        "on_late_result",
        "refer_headers",
        "refer_to",
        "ring_timeout",
        "state",
        "transfer_timeout",
        "ua",
        "waiter",
    )

    def __init__(
        self,
        ua: UserAgent,
        target_uri: str,
        refer_to: str | Picker,
        ring_timeout: float,
        transfer_timeout: float,
        bye_grace: float,
        refer_headers: Iterable[tuple[str, str]],
        on_late_result: OnLateResult | None = None,
        on_hang_up: OnHangUp | None = None,
    ):
        self.ua = ua
        #: Where every request of the call goes: where new requests went when it started
        #: (a failover of the user agent moves later calls, not this one).
        self.destination = ua.destination
        self.on_late_result = on_late_result
        self.on_hang_up = on_hang_up
        self.call_id = f"{token_hex(12)}@{ua.contact_host}"
        logs.bind(call_id=self.call_id)  # every later record of the call's task names it
        self.from_tag = token_hex(6)
        self.attempt = CallRecord(target_uri, self.call_id)
        self.refer_to = refer_to
        self.ring_timeout = ring_timeout
        self.transfer_timeout = transfer_timeout
        self.bye_grace = bye_grace
        self.refer_headers = list(refer_headers)
        self.waiter: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.state = _INVITING
        self.dialog: Dialog | None = None
        self.invite_tx: ClientTransaction | None = None
        # The INVITE's own values, for its CANCEL and the dialog (not parsed back).
        self._from = f'"{ua.account.display_name}" <{ua.aor}>;tag={self.from_tag}'
        self._to = f"<{target_uri}>"
        self._seq = 0
        self._deadline: float | None = None
        self._deadline_queue: TimerQueue | None = None  # where the deadline's timer is
        self._deadline_number = 0
        self._refer_challenges = 0
        self._provisional = self._cancelled = self._cancel_when_possible = False
        self._answered_challenge = self._accepted = self._bye_received = False
        self._held: list[tuple[str, Request | Response | None]] | None = None
        self._then: tuple[Outcome, Detail | None] | None = None
        self._ending = False  # the engine stops: `end`
        self._grace = 0.0
        # The last session description we sent in the dialog, and its o= version.
        self._sdp_sent = ua.sdp_offer()
        self._sdp_version = ua.sdp_version

    async def run(self) -> CallRecord:
        """Place the call and wait for its end (UserAgent.place_call, which has made it one of
        the user agent's calls), running the operator picker at the answer when there is one.
        """
        try:
            self.start()
            while (await self.waiter) is _PICK:
                self.waiter = asyncio.get_running_loop().create_future()
                pick = self.refer_to
                assert not isinstance(pick, str)  # a URI would have been referred to at once
                self.refer_chosen(await pick())
            return self.attempt
        finally:
            self.state = _OVER  # whatever ended it (cancelled, a picker that raised)
            self.set_deadline(None)
            calls = self.ua._calls
            if calls.get(self.call_id) is self:
                del calls[self.call_id]

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
        assert queue is not None  # `add` put the timer there
        self._deadline_number = queue.tail - 1

    # events from the transaction layer and the user agent

    def deadline_came(self, due: float) -> None:
        """The timer of a deadline came (UserAgent._call_deadline): tell the call, unless it
        has set another since."""
        if self._deadline == due:
            self._deadline = None
            self.event(_DEADLINE)

    def _on_invite_response(self, tx: ClientTransaction, response: Response) -> None:
        if response.status == 503:  # the next call tries the next target (RFC 3263 4.3)
            self.ua.unreachable(self.destination)
        self.event(_INVITE, response)

    def _on_invite_timeout(self, tx: ClientTransaction) -> None:
        self.ua.unreachable(self.destination)  # the next call tries the next target
        self.event(_INVITE_TIMEOUT)

    def _on_refer_response(self, tx: ClientTransaction, response: Response) -> None:
        if response.status >= 200:
            self.event(_REFER, response)

    def _on_refer_timeout(self, tx: ClientTransaction) -> None:
        self.event(_REFER)

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        """A request of the PBX inside our dialog: answered here, then told to the call."""
        method = request.method
        if method == "NOTIFY" or method == "BYE":
            tx.respond(request.response_head("SIP/2.0 200 OK") + _NO_BODY)
            self.event(_NOTIFY if method == "NOTIFY" else _BYE, request)
        elif method == "INVITE":
            self._reinvite(request, tx)
        else:
            tx.respond(format_response(request, 405, "Method Not Allowed", [("Allow", ALLOW)]))

    def _reinvite(self, request: Request, tx: ServerTransaction) -> None:
        """A re-INVITE (RFC 3261 section 14.2): 200 with our answer to its offer (RFC 3264:
        on hold, `a=sendonly` is answered `a=recvonly`), or with our offer when it has none;
        488 with a Warning saying why when its SDP is malformed or offers nothing we can take,
        415 for a body that is not SDP. After a refusal the session stays as it was."""
        ua = self.ua
        media = ua.media
        refusal: tuple[int, str, list[tuple[str, str]]] | None = None
        body = b""
        if not request.body:  # the PBX wants our offer (RFC 3261 section 14.2)
            body = self._session(lambda version: sdp.offer(media, version))
        elif request.content_type != "application/sdp":
            refusal = (415, "Unsupported Media Type", [("Accept", "application/sdp")])
        else:
            try:
                offered = sdp.parse(request.body)
                body = self._session(lambda version: sdp.answer(offered, media, version))
            except sdp.SDPError as error:
                # Warning codes (RFC 3261 section 20.43): 305 incompatible media format;
                # 399 miscellaneous, for SDP we could not read.
                code = 305 if isinstance(error, sdp.NotAcceptable) else 399
                text = str(error).replace('"', "'")[:200]
                refusal = (488, "Not Acceptable Here", [("Warning", f'{code} autocall "{text}"')])
        if refusal is None:
            headers = [("Contact", ua.contact), ("Content-Type", "application/sdp")]
            response = format_response(request, 200, "OK", headers, body)
        else:
            response = format_response(request, *refusal)
        # A final response to INVITE is sent again until its ACK (section 17.2.1).
        tx.respond(response, reliable_2xx=True)

    def _session(self, describe: Callable[[int], bytes]) -> bytes:
        """Our session description from `describe(version)`: at the version of the last one
        we sent in this dialog when it says the same, else at the next (RFC 3264 section
        8); it is the last one sent from now on."""
        body = describe(self._sdp_version)
        if body != self._sdp_sent:
            self._sdp_version += 1
            body = self._sdp_sent = describe(self._sdp_version)
        return body

    def event(self, kind: str, msg: Request | Response | None = None) -> None:
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
                held = self._held
                assert held is not None  # picking: `_answered` made it
                held.append((kind, msg))  # told once the REFER is out
                if kind == _BYE and self.on_hang_up is not None:
                    self.on_hang_up()  # a picker holding the customer stops waiting
            elif state == _LEAVING and kind == _DEADLINE and self._ending:
                then = self._then
                assert then is not None  # leaving: `_leave_with_bye` set it
                self._finish(*then)  # the engine stops: no longer wait for our BYE's 200
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
        self.invite_tx = ua.send_head(
            "INVITE",
            self.attempt.dialed_uri,
            head,
            ua.sdp_offer(),
            self._on_invite_response,
            self._on_invite_timeout,
            destination=self.destination,
        )

    def _cancel(self) -> None:
        """CANCEL the INVITE: same branch, Call-ID, From, To and CSeq number (section 9.1)."""
        headers = [
            ("Max-Forwards", "70"),
            ("From", self._from),
            ("To", self._to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self._seq} CANCEL"),
        ]
        invite = self.invite_tx
        assert invite is not None  # sent at the start
        self.ua.send(
            "CANCEL",
            self.attempt.dialed_uri,
            headers,
            b"",
            _ignore_response,
            _ignore_timeout,
            branch=invite.branch,
            destination=self.destination,
        )
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
        if detail == Detail.TRANSFER_TIMEOUT and self.dialog is not None:
            # the transfer may still succeed: its result is awaited a while longer
            self.ua.await_late_result(self.dialog, self.on_late_result)
        if not self.waiter.done():
            self.waiter.set_result(None)

    def _inviting(self, kind: str, response: Request | Response | None) -> None:
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
            # A TCP / TLS connection to the PBX that could not be made (the transport says
            # why) is our trouble, not the customer's: the lead is not written unavailable.
            failed = self.ua.transport.failure is not None
            outcome = Outcome.TECHNICAL_ERROR if failed else Outcome.UNAVAILABLE
            self._finish(outcome, Detail.NO_RESPONSE)
            return
        if kind != _INVITE:
            return  # nothing else happens before there is a dialog
        assert isinstance(response, Response)  # what the INVITE's transaction passes on
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
        self.dialog = dialog = Dialog.from_2xx(
            self.call_id, self.from_tag, self._from, self._seq, attempt.dialed_uri, response
        )
        ack = (
            f"ACK {dialog.remote_target} SIP/2.0\r\nVia: {ua.via(new_branch())}\r\n"
            f"{dialog.head}CSeq: {dialog.local_seq} ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        ua.transport.send(ack, self.destination)
        # The transaction ACKs the PBX's 2xx copies from now on, without this call.
        invite = self.invite_tx
        assert invite is not None  # it brought the 2xx
        invite.accept(ack)
        if self._ending:  # answered as the engine stops: nobody will take the customer
            self._leave_with_bye(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
        elif isinstance(self.refer_to, str):
            self.refer_chosen(self.refer_to)
        else:  # the picker runs in `run`'s task; what the PBX says meanwhile waits
            self.state = _PICKING
            self._held = []
            self.waiter.set_result(_PICK)

    def refer_chosen(self, refer_to: Target | None) -> None:
        """The operator to transfer to (None: nobody is free): REFER, and follow it."""
        if self.state == _OVER:  # ended while the picker ran: `run` must not wait on
            if not self.waiter.done():
                self.waiter.set_result(None)
            return
        attempt = self.attempt
        if self._ending:  # the engine stopped while the picker ran: no REFER
            self._leave_with_bye(Outcome.TECHNICAL_ERROR, Detail.ENGINE_STOPPED)
            return
        if refer_to is None:
            if any(kind == _BYE for kind, _ in self._held or ()):
                # the customer hung up while held for an operator: nothing left to end
                self._finish(Outcome.TECHNICAL_ERROR, Detail.NO_FREE_OPERATOR)
            else:
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

    def _transferring(self, kind: str, msg: Request | Response | None) -> None:
        attempt = self.attempt
        if kind == _REFER:  # our REFER's final response, or None (no answer by Timer F)
            assert msg is None or isinstance(msg, Response)
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
            assert msg is not None  # the NOTIFY
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
            self._transfer_failed(
                None, Detail.ENGINE_STOPPED if self._ending else Detail.TRANSFER_TIMEOUT
            )
        if self._ending and self._accepted:
            self._handed_over()
        if attempt.transfer_result is None:
            return
        if (
            attempt.transfer_result != TransferResult.FAILED
            and not self._bye_received
            and not self._ending
        ):
            # After a transfer some PBXes end our leg themselves (others, Asterisk among them,
            # wait for the transferor to hang up); give it a moment before we leave with our
            # own BYE, as RFC 5589's flows do.
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
        assert dialog is not None  # answered
        self.ua.request(
            "BYE",
            dialog.remote_target,
            dialog.headers("BYE"),
            dialog.next_seq,
            self._left,
            self.destination,
        )

    def _left(self, response: Response | None) -> None:
        """Our BYE has its final response (or Timer F came)."""
        if self.state == _LEAVING:
            then = self._then
            assert then is not None  # leaving: `_leave_with_bye` set it
            self._finish(*then)

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
        assert dialog is not None  # answered
        head = f"{dialog.head}CSeq: {dialog.next_seq()} REFER\r\n{self._refer_extra}"
        if authorization:
            head += f"{authorization[0]}: {authorization[1]}\r\n"
        self.ua.send_head(
            "REFER",
            dialog.remote_target,
            head,
            b"",
            self._on_refer_response,
            self._on_refer_timeout,
            destination=self.destination,
        )

    def _answer_refer(self, challenge: Response) -> bool:
        """REFER again with credentials for a 401/407 (once, and again only when the nonce
        was stale); False when the challenge must not be answered."""
        if self._refer_challenges >= 2:
            return False
        assert self.dialog is not None  # answered
        answer = self.ua.answer_challenge(
            challenge, "REFER", self.dialog.remote_target, stale_only=self._refer_challenges > 0
        )
        if answer is None:
            return False
        self._refer_challenges += 1
        self._send_refer(answer)
        return True


def _ignore_response(tx: ClientTransaction, response: Response) -> None:
    pass


def _ignore_timeout(tx: ClientTransaction) -> None:
    pass
