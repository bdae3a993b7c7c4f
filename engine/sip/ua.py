"""The user agent: one SIP account of a tenant, registered on the tenant's PBX, placing calls
and transferring the answered ones to an operator with REFER.

It plays one role only (see docs/sip.md): it sends REGISTER, INVITE / CANCEL / ACK / BYE and
REFER, and it answers what a PBX sends inside our calls (NOTIFY, BYE, re-INVITE) and OPTIONS.
Everything comes from and goes to the PBX (or the outbound proxy): requests and responses
from any other address are dropped, and credentials are only ever sent in answer to a
challenge of our own transaction from the PBX, for the expected realm.

This module holds the user agent itself: its socket and transactions, the requests it
builds and sends, the routing of what comes in, and its public API. The registration is
engine/sip/registration.py's, a call attempt (with its transfer) engine/sip/call.py's; their
names callers use (`CallRecord`, `Registration`, `classify`, `ALLOW`) are exported here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from engine.outcomes import TransferResult
from engine.sip import Request, Response, nat
from engine.sip.auth import Credentials, DigestClient, choose
from engine.sip.call import (
    ALLOW,
    LATE_WINDOW,
    Call,
    CallRecord,
    LateResult,
    OnHangUp,
    OnLateResult,
    Picker,
    classify,
)
from engine.sip.dialog import Dialog
from engine.sip.keepalive import KEEPALIVE_INTERVAL, Keepalive, KeepaliveClient
from engine.sip.locate import DEFAULT_PORTS, NEGATIVE_TTL, Locator
from engine.sip.message import format_response
from engine.sip.nat import PortRange, PublicAddresses
from engine.sip.registration import Registration, RegistrationClient
from engine.sip.sdp import LocalMedia, offer
from engine.sip.stream import StreamTransport, tls_context
from engine.sip.transaction import (
    DEFAULT_TIMERS,
    ClientTransaction,
    OnResponse,
    OnTimeout,
    ServerTransaction,
    Timers,
    TransactionLayer,
    new_branch,
    token_hex,
)
from engine.sip.transport import Address, Transport

__all__ = [
    "ALLOW",
    "Account",
    "CallRecord",
    "LateResult",
    "Registration",
    "TargetRefused",
    "UserAgent",
    "classify",
]

log = logging.getLogger(__name__)


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
    #: How SIP travels to the PBX: "udp", "tcp" or "tls" (engine/sip/stream.py).
    transport: str = "udp"
    #: The CA bundle (PEM) the PBX's TLS certificate must chain to; empty: the system's CAs.
    tls_ca_pem: str = field(default="", repr=False)
    #: Our URIs (address of record, Contact, the URIs dialed) use sips: (TLS only).
    use_sips: bool = False

    def __post_init__(self) -> None:
        # The host as URIs write it: an IPv6 literal in brackets (a `--pbx [::1]:5070`
        # arrives without them), so `{host}` in the formats makes a valid URI.
        object.__setattr__(self, "host", nat.bracket(self.host))

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.username, self.password, self.auth_username, self.realm)

    @property
    def scheme(self) -> str:
        """The URI scheme of our URIs: sips: only over TLS and when the tenant asks."""
        return "sips" if self.use_sips and self.transport == "tls" else "sip"


class TargetRefused(OSError):
    """DNS gave the PBX (`host`) only addresses this deployment does not send to: `address`
    is the first of them."""

    def __init__(self, host: str, address: str):
        super().__init__(
            f"{address} is not a public address, and this deployment does not send to private ones"
        )
        self.host, self.address = host, address


def _sips(uri: str) -> str:
    """A sip: URI as sips: (RFC 3261 19.1); other URIs as they are."""
    return "sips:" + uri[4:] if uri[:4].lower() == "sip:" else uri


class UserAgent:
    """One tenant's SIP user agent on one UDP socket, or one TCP or TLS connection to the PBX
    (the account's `transport`)."""

    #: Where new requests go: one of `targets` (`locate`, `unreachable`).
    destination: Address

    def __init__(
        self,
        account: Account,
        *,
        local_host: str = "",
        local_port: int = 0,
        ports: PortRange | None = None,
        public: PublicAddresses = nat.NONE_SET,
        timers: Timers = DEFAULT_TIMERS,
        user_agent: str = "AutoCall Cloud",
        late_window: float = LATE_WINDOW,
        locator: Locator | None = None,
        target_allowed: Callable[[str], bool] | None = None,
    ):
        self.account = account
        #: Finds the PBX (or the outbound proxy) in DNS: engine/sip/locate.py.
        self.locator = locator or Locator()
        #: Whether an address may be sent to (a deployment that sends to public ones only).
        self.target_allowed = target_allowed
        #: Where requests may go, in the order DNS gives (`locate`), `destination` the one
        #: new requests go to; every one of them may talk to us (`allowed_sources`).
        self.targets: list[Address] = []
        self.allowed_sources: set[Address] = set()
        self._located_until = 0.0
        #: Seconds a timed-out transfer's subscription stays alive for its late result.
        self.late_window = late_window
        #: Transfers whose wait ended without a result, by Call-ID: (the dialog, who hears of
        #: the result, until when: the timer's due time).
        self._late: dict[str, tuple[Dialog, OnLateResult | None, float]] = {}
        #: The address our socket binds ("": the wildcard of the PBX's family) and its port
        #: (0: the first free one of `ports`, else any).
        self.local_host = local_host
        #: What the socket is bound to (`start`): its family is the one we can reach.
        self._bind = ""
        self.local_port = local_port
        self.ports = ports
        #: The deployment's public addresses: when one is of the PBX's family, the PBX is
        #: told that one and nothing is learned (engine/sip/nat.py).
        self.public = public
        self.timers = timers
        self.user_agent = user_agent
        self.digest = DigestClient(account.credentials)
        self._calls: dict[str, Call] = {}
        self.registration_client = RegistrationClient(self)
        self.keepalive_client = KeepaliveClient(self)

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.locate()
        bind = self._bind = nat.bind_host(self.local_host, self.destination[0])

        def open_at(port: int) -> Awaitable[Transport | StreamTransport]:
            return self._open_transport(bind, port)

        try:
            if self.local_port:
                self.transport = await open_at(self.local_port)
            else:  # the first free port of the deployment's range (a firewall lets it through)
                self.transport = await nat.first_free(open_at, self.ports)
        except OSError as error:
            worded = nat.no_route(self.destination[0], error)
            if worded is error:
                raise
            raise worded from error
        self.layer = TransactionLayer(self.transport, self.timers)
        # Bound once: the layer's timers key on it.
        self._call_deadline = self._call_deadline  # type: ignore[method-assign]
        self._late_over = self._late_over  # type: ignore[method-assign]
        self.port = self.transport.local_address[1]
        try:
            #: Our own address towards the PBX (what the routing table picks).
            self.local_address = self._address_towards(self.destination)
            # Held for the SDP; never read. Its port is any: we never receive media.
            self._rtp = socket.socket(nat.family_of(self.local_address), socket.SOCK_DGRAM)
            try:
                self._rtp.bind((self.local_address, 0))
            except BaseException:
                self._rtp.close()
                raise
        except BaseException:
            self.layer.close()
            self.transport.close()
            raise
        now = int(loop.time())
        self.sdp_version = now  # the o= version of our INVITEs' offer
        self._session_id = str(now)
        public = self.public.towards(self.destination[0])
        self._advertise((public, self.port) if public else (self.local_address, self.port))

    def _advertise(self, address: tuple[str, int]) -> None:
        """Say `address` is where the PBX reaches us: in our Via, Contact and SDP from now
        on (calls in progress keep theirs)."""
        #: Our address and port as the PBX sees them (`nat.py`).
        self.contact_host, self.contact_port = address
        where = f"{nat.bracket(self.contact_host)}:{self.contact_port}"
        #: Our side of every session (its SDP: engine/sip/sdp.py).
        self.media = LocalMedia(self.contact_host, self._rtp.getsockname()[1], self._session_id)
        # What every request repeats, made once.
        kind = self.account.transport
        self._via_head = f"SIP/2.0/{kind.upper()} {where};branch="
        # RFC 3261 19.1.1: transport=tcp / tls; a sips: URI implies TLS (RFC 5630 section 3.3).
        param = "" if kind == "udp" or self.account.scheme == "sips" else f";transport={kind}"
        self._contact = f"<{self.account.scheme}:{self.account.username}@{where}{param}>"
        self._invite_tail = f"Contact: {self._contact}\r\nAllow: {ALLOW}\r\n"
        self._user_agent_line = f"User-Agent: {self.user_agent}\r\n"
        self._sdp = offer(self.media, self.sdp_version)

    def learn_address(self, response: Response) -> bool:
        """Take our address from the `received`/`rport` of the top Via of the PBX's answer
        (RFC 3581), unless the deployment set a public address for the PBX's family. True
        when it changed: the caller registers again with it, as phones do."""
        if self.public.towards(self.destination[0]):
            return False
        seen = nat.learned(response.via, self.port)
        if seen is None or seen == (self.contact_host, self.contact_port):
            return False
        if nat.family_of(seen[0]) != nat.family_of(self.contact_host):
            return False  # a translator between families: nothing our socket can use
        log.info(
            "the PBX sees us at %s:%s, not %s:%s: using that from now on",
            *seen,
            self.contact_host,
            self.contact_port,
        )
        self._advertise(seen)
        return True

    async def _open_transport(self, host: str, port: int) -> Transport | StreamTransport:
        """The account's transport bound to (host, port): UDP, or TCP / TLS, connecting to
        the PBX (or to the outbound proxy, whose name the TLS certificate must then carry)
        with the first request."""
        accepts = self.allowed_sources.__contains__
        if self.account.transport == "udp":
            return await Transport.open(self._on_message, host, port, accepts)
        tls = tls_context(self.account.tls_ca_pem) if self.account.transport == "tls" else None
        proxy = self.account.outbound_proxy
        return await StreamTransport.open(
            self._on_message,
            host,
            port,
            accepts,
            tls=tls,
            server_name=nat.unbracket((proxy or (self.account.host,))[0]),
            on_failure=self._unreachable,
        )

    def _unreachable(self, destination: Address, reason: str) -> None:
        """The connection to the PBX failed (the transport words why: `transport.failure`):
        what waits for its answer ends now."""
        self.layer.fail(destination)

    async def close(self) -> None:
        """Stop: withdraw our registration when the PBX may hold one (waiting for its answer
        `registration.UNREGISTER_WAIT` seconds at most), then close the sockets."""
        try:
            await self.keepalive_client.stop()
            await self.registration_client.stop()
        finally:
            self.layer.close()
            self.transport.close()
            self._rtp.close()

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def locate(self) -> None:
        """Find the PBX in DNS (RFC 3263: engine/sip/locate.py) when the answers of the last
        look-up are no longer kept: at the start, and then before each REGISTER and call.

        With an outbound proxy every message goes through it, and only it may talk to us;
        the PBX's name then only appears in URIs and need not resolve here. The port the
        account gives is taken as given unless it is the default one, which the portal
        always fills in: then DNS says (NAPTR and SRV records, when the name has them).
        `destination` stays where it is while it is still one of the targets (after a
        failover, the target that answered); requests of calls already going keep theirs.
        A DnsError (an OSError) says what is wrong, in the admin's words; the last targets
        then stay in use for `NEGATIVE_TTL` seconds before DNS is asked again."""
        locator = self.locator
        if self.targets and locator.clock() < self._located_until:
            return
        host, port = self.account.outbound_proxy or (self.account.host, self.account.port)
        transport = self.account.transport
        given = None if port == DEFAULT_PORTS[transport] else port
        try:
            location = await locator.locate(host, given, transport)
        except OSError:
            self._located_until = locator.clock() + NEGATIVE_TTL
            raise
        targets = list(dict.fromkeys(target.address for target in location.targets))
        if bound := self.local_host or self._bind:  # one family's socket reaches only its own
            first = nat.pick(targets, bound)  # WrongFamily, in words, when none
            targets = [t for t in targets if nat.family_of(t[0]) == nat.family_of(first[0])]
        allowed = self.target_allowed
        if allowed is not None:
            refused = [address for address, _port in targets if not allowed(address)]
            targets = [target for target in targets if allowed(target[0])]
            if not targets:
                self._located_until = locator.clock() + NEGATIVE_TTL
                raise TargetRefused(host, refused[0])
        if not self.targets or self.destination not in targets:
            self.destination = targets[0]
        self.targets = targets
        self.allowed_sources.update(targets)  # the old ones too: calls may still talk to them
        self._located_until = location.until

    def unreachable(self, destination: Address) -> None:
        """A request to `destination` had no answer at all (Timer B or F) or a 503: new
        requests go to the next target from now on (RFC 3263 section 4.3), after the last
        one back to the first. Calls already going keep talking to theirs."""
        targets = self.targets
        if destination != self.destination or len(targets) < 2:
            return
        self.destination = targets[(targets.index(destination) + 1) % len(targets)]
        log.warning("%s:%s does not answer: now sending to %s:%s", *destination, *self.destination)

    def _address_towards(self, destination: Address) -> str:
        """Our own address towards the PBX: the wildcard bind resolved by the routing table
        (OSError in plain words when there is no route: nat.no_route)."""
        bound = self.transport.local_address[0]
        if bound not in ("0.0.0.0", "::"):
            return bound
        with socket.socket(nat.family_of(destination[0]), socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(destination)  # no packet is sent for UDP
            except OSError as error:
                raise nat.no_route(destination[0], error) from error
            address: str = probe.getsockname()[0]
            return address

    # --- building requests -------------------------------------------------------------------

    def via(self, branch: str) -> str:
        return f"{self._via_head}{branch};rport"

    @property
    def contact(self) -> str:
        return self._contact

    @property
    def aor(self) -> str:
        """Our address of record at the PBX."""
        return f"{self.account.scheme}:{self.account.username}@{nat.bracket(self.account.host)}"

    @property
    def registrar(self) -> str:
        """The PBX's registrar: where REGISTER goes."""
        return f"{self.account.scheme}:{nat.bracket(self.account.host)}:{self.account.port}"

    def sdp_offer(self) -> bytes:
        """The offer of every INVITE of this user agent (each call answers its re-INVITEs
        from their offers: `Call.on_request`)."""
        return self._sdp

    def send(
        self,
        method: str,
        uri: str,
        headers: list[tuple[str, str]],
        body: bytes,
        on_response: OnResponse,
        on_timeout: OnTimeout,
        branch: str | None = None,
        destination: Address | None = None,
    ) -> ClientTransaction:
        """Start a client transaction for a request: our Via (with a new branch unless one is
        given: a CANCEL's is its INVITE's) goes on top of `headers`."""
        head = "".join([f"{name}: {value}\r\n" for name, value in headers])
        return self.send_head(method, uri, head, body, on_response, on_timeout, branch, destination)

    def send_head(
        self,
        method: str,
        uri: str,
        head: str,
        body: bytes,
        on_response: OnResponse,
        on_timeout: OnTimeout,
        branch: str | None = None,
        destination: Address | None = None,
    ) -> ClientTransaction:
        """`send`, with the headers below our Via already written out (each line ending in
        CRLF): the calls keep theirs prepared. It goes to `destination`, by default where
        new requests go (a call's go where its INVITE went)."""
        branch = branch or new_branch()
        raw = (
            f"{method} {uri} SIP/2.0\r\nVia: {self._via_head}{branch};rport\r\n{head}"
            f"{self._user_agent_line}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return self.layer.send_request(
            method, branch, raw, destination or self.destination, on_response, on_timeout
        )

    async def transact(
        self, method: str, uri: str, headers: list[tuple[str, str]], next_seq: Callable[[], int]
    ) -> Response | None:
        """Send a non-INVITE request and wait for its final response (see `request`); None
        when nothing came back before Timer F."""
        done: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()

        def settle(response: Response | None) -> None:
            if not done.done():
                done.set_result(response)

        transaction = _Transact(self, method, uri, headers, next_seq, settle)
        transaction.send()
        try:
            return await done
        except asyncio.CancelledError:
            transaction.abandoned = True  # nobody waits: a challenge is no longer answered
            raise

    def request(
        self,
        method: str,
        uri: str,
        headers: list[tuple[str, str]],
        next_seq: Callable[[], int],
        on_final: Callable[[Response | None], None],
        destination: Address | None = None,
    ) -> None:
        """Send a non-INVITE request and call `on_final` with its final response (None when
        nothing came back before Timer F), answering the PBX's digest challenge once (again
        only when it says the nonce was stale); the request sent again takes its CSeq number
        from `next_seq`. `destination`: as for `send_head`."""
        _Transact(self, method, uri, headers, next_seq, on_final, destination).send()

    def answer_challenge(
        self, response: Response, method: str, uri: str, stale_only: bool
    ) -> tuple[str, str] | None:
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

    @property
    def registration(self) -> Registration:
        """The state of our registration, worded for the admin (engine/sip/registration.py)."""
        return self.registration_client.registration

    @property
    def registration_failures(self) -> int:
        """REGISTERs that failed so far (for the metrics: engine/metrics.py)."""
        return self.registration_client.failures

    async def register(self, expires: int = 3600) -> Registration:
        """REGISTER once (with digest when challenged); the result is also kept in
        `registration`."""
        return await self.registration_client.register(expires)

    def keep_registered(self, expires: int = 3600, max_backoff: float = 300.0) -> None:
        """Register now and refresh before expiry; after a failure retry with backoff."""
        self.registration_client.keep(expires, max_backoff)

    # --- keep-alive --------------------------------------------------------------------------

    @property
    def keepalive(self) -> Keepalive:
        """How the PBX answers our OPTIONS (engine/sip/keepalive.py)."""
        return self.keepalive_client.keepalive

    def keep_alive(
        self,
        interval: float = KEEPALIVE_INTERVAL,
        on_silent: Callable[[], None] | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        """OPTIONS to the PBX every `interval` seconds; `on_silent` when one goes
        unanswered, `on_answer` when the PBX answers again after that."""
        self.keepalive_client.keep(interval, on_silent, on_answer)

    # --- calls -------------------------------------------------------------------------------

    async def place_call(
        self,
        target_uri: str,
        refer_to: str | Picker,
        *,
        ring_timeout: float = 30.0,
        transfer_timeout: float = 10.0,
        bye_grace: float = 1.0,
        refer_headers: Sequence[tuple[str, str]] = (),
        on_late_result: OnLateResult | None = None,
        on_hang_up: OnHangUp | None = None,
    ) -> CallRecord:
        """Dial `target_uri`; when answered, transfer to `refer_to` (a URI, or a coroutine
        function that picks one at the moment of answer, optionally with the REFER's extra
        headers as `(uri, headers)`, and may return None: no free operator). Returns the
        attempt's outcome and timings.

        The call runs as callbacks of its transactions, dialog and timers (`Call`): this
        coroutine only waits for its end, and runs the operator picker when there is one.

        A transfer whose result did not come within `transfer_timeout` ends the call as
        timed out; its final NOTIFY may still come within `late_window` seconds, and is then
        told to `on_late_result` (in the transport's callback: it must not block).

        A customer who hangs up while the picker runs (it may hold them a moment for an
        operator about to be free) is told to `on_hang_up` at once, in the transport's
        callback; the call then ends without a REFER once the picker returns None.

        The call goes where new requests go when it starts (DNS asked again first when its
        answers are no longer kept), and stays there to its end."""
        with contextlib.suppress(OSError):  # the last targets serve; REGISTER says why
            await self.locate()
        if self.account.scheme == "sips":  # the tenant asked for sips: end to end
            target_uri = _sips(target_uri)
            refer_to = _sips(refer_to) if isinstance(refer_to, str) else refer_to
        call = Call(
            self,
            target_uri,
            refer_to,
            ring_timeout,
            transfer_timeout,
            bye_grace,
            refer_headers,
            on_late_result,
            on_hang_up,
        )
        self._calls[call.call_id] = call
        return await call.run()

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
        if call is not None:
            call.deadline_came(due)

    @property
    def late_transfers(self) -> int:
        """Timed-out transfers whose late result is still awaited (`await_late_result`)."""
        return len(self._late)

    def await_late_result(self, dialog: Dialog, on_result: OnLateResult | None) -> None:
        """A call's transfer timed out and the call is over: keep the REFER's subscription
        (the dialog's subscription usage, RFC 5057) for `late_window` seconds, answering its
        NOTIFYs 200 and telling `on_result` of a final one."""
        if self.late_window <= 0:
            return
        until = self.layer.queues.add(self.late_window, self._late_over, dialog.call_id)
        self._late[dialog.call_id] = (dialog, on_result, until)

    def _late_over(self, call_id: str, due: float) -> None:
        """The late window of a timed-out transfer is over: its NOTIFYs get 481 from now on."""
        late = self._late.get(call_id)
        if late is not None and late[2] == due:
            del self._late[call_id]

    def _late_notify(self, request: Request, tx: ServerTransaction) -> None:
        """A request in the subscription of a timed-out transfer: a NOTIFY is answered 200 and
        its final result told; anything else 481 (the invite usage is over)."""
        call_id = request.call_id or ""
        if request.method != "NOTIFY":
            tx.respond(format_response(request, 481, "Call/Transaction Does Not Exist"))
            return
        tx.respond(format_response(request, 200, "OK"))
        status = request.sipfrag
        state = request.subscription_state
        final = status is not None and status.status >= 200
        if final or (state is not None and state.state == "terminated"):
            _dialog, on_result, _until = self._late.pop(call_id)
            if final and on_result is not None:
                assert status is not None  # final
                result = TransferResult.SUCCEEDED if status.status < 300 else TransferResult.FAILED
                on_result(LateResult(call_id, result, status.status, status.reason, time.time()))

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
        # The Call-ID matched: the tags say whether it is the dialog's (Dialog.matches).
        if (
            call is not None
            and (dialog := call.dialog) is not None
            and request.to_tag == dialog.local_tag
            and request.from_tag == dialog.remote_tag
        ):
            call.on_request(request, tx)
        elif (
            call is None
            and (late := self._late.get(request.call_id or "")) is not None
            and request.to_tag == late[0].local_tag
            and request.from_tag == late[0].remote_tag
        ):
            self._late_notify(request, tx)
        elif request.method == "OPTIONS":
            tx.respond(format_response(request, 200, "OK", [("Allow", ALLOW)], to_tag=token_hex(4)))
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

    __slots__ = (
        "abandoned",
        "authorization",
        "destination",
        "headers",
        "method",
        "next_seq",
        "on_final",
        "sends",
        "ua",
        "uri",
    )

    def __init__(
        self,
        ua: UserAgent,
        method: str,
        uri: str,
        headers: list[tuple[str, str]],
        next_seq: Callable[[], int],
        on_final: Callable[[Response | None], None],
        destination: Address | None = None,
    ):
        self.ua = ua
        self.destination = destination
        self.method = method
        self.uri = uri
        self.headers = headers
        self.next_seq = next_seq
        self.on_final = on_final
        self.authorization: tuple[str, str] | None = None
        self.sends = 0
        self.abandoned = False

    def send(self) -> None:
        self.sends += 1
        extra = [self.authorization] if self.authorization else []
        self.ua.send(
            self.method,
            self.uri,
            self.headers + extra,
            b"",
            self._on_response,
            self._on_timeout,
            destination=self.destination,
        )

    def _on_response(self, tx: ClientTransaction, response: Response) -> None:
        if response.status < 200 or self.abandoned:
            return
        if response.status == 503:
            self.ua.unreachable(tx.destination)
        if response.status in (401, 407) and self.sends < 3:
            answer = self.ua.answer_challenge(
                response, self.method, self.uri, stale_only=bool(self.authorization)
            )
            if answer is not None:
                self.authorization = answer
                method = self.method
                self.headers = [
                    (n, v) if n != "CSeq" else (n, f"{self.next_seq()} {method}")
                    for n, v in self.headers
                ]
                self.send()
                return
        self.on_final(response)

    def _on_timeout(self, tx: ClientTransaction) -> None:
        self.ua.unreachable(tx.destination)
        self.on_final(None)
