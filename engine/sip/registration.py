"""Our registration at the tenant's PBX (RFC 3261 section 10): REGISTER, with digest when
challenged, refreshed before it expires and retried with backoff after a failure, and
withdrawn when the user agent closes; its state worded for the admin (`Registration`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.sip.call import ALLOW
from engine.sip.transaction import token_hex

if TYPE_CHECKING:
    from engine.sip import Response
    from engine.sip.ua import UserAgent

log = logging.getLogger(__name__)

#: How long closing waits for the PBX's answer to our unregistration (REGISTER, Expires: 0)
#: at most, its digest challenge included: a live PBX answers on a LAN or the internet in
#: well under a second, and an engine that stops or `autocall test-call` must not hang on a
#: PBX that does not answer. Without the answer the binding expires at the PBX by itself.
UNREGISTER_WAIT = 2.0


@dataclass
class Registration:
    """The state of our registration, in words an admin understands."""

    state: str = "unregistered"  # registering / registered / failed
    code: int | None = None
    reason: str | None = None
    detail: str = "not registered yet"
    expires: int | None = None
    at: float | None = None


class RegistrationClient:
    """A user agent's binding at the PBX's registrar: every REGISTER and refresh keeps one
    Call-ID and From tag, with the CSeq rising (section 10.2.4)."""

    def __init__(self, ua: UserAgent):
        self.ua = ua
        self.registration = Registration()
        self.failures = 0  # for the metrics (engine/metrics.py)
        self._call_id = f"{token_hex(10)}@autocall"
        self._tag = token_hex(6)
        self._seq = 0
        self._keeper: asyncio.Task[None] | None = None
        # The PBX may hold a binding of ours: a REGISTER went out since we last withdrew it,
        # and no answer said that nothing of ours is there. Closing then unregisters.
        self._bound = False

    def _headers(self, expires: int) -> list[tuple[str, str]]:
        ua = self.ua
        return [
            ("Max-Forwards", "70"),
            ("From", f"<{ua.aor}>;tag={self._tag}"),
            ("To", f"<{ua.aor}>"),
            ("Call-ID", self._call_id),
            ("CSeq", f"{self._next_seq()} REGISTER"),
            ("Contact", ua.contact),
            ("Expires", str(expires)),
            ("Allow", ALLOW),
        ]

    async def register(self, expires: int = 3600) -> Registration:
        """REGISTER (with digest when challenged); the result is also kept in
        `self.registration`, worded for the admin. When the PBX's answer shows that it sees
        us at another address than our Contact said (NAT: `UserAgent.learn_address`), once
        more at once with the address it sees, as phones do: the PBX must reach us there.

        DNS is asked again first when its answers are no longer kept (`UserAgent.locate`);
        when that fails, the servers found before still serve (a DNS outage alone does not
        stop the dialing), and the failure is told with the PBX's own silence. A target that
        does not answer (or answers 503) is left at once for the next one of the PBX's
        targets (RFC 3263 section 4.3), each tried once."""
        result, response = await self._register(expires)
        if (
            response is not None
            and result.state == "registered"
            and self.ua.learn_address(response)
        ):
            result, _response = await self._register(expires)
        return result

    async def _register(self, expires: int) -> tuple[Registration, Response | None]:
        ua = self.ua
        dns_failure = ""
        try:
            await ua.locate()
        except OSError as error:  # the PBX's name does not resolve (now)
            log.warning("registering with the servers found before: %s", error)
            dns_failure = f"; {error}"
        self.registration.state = "registering"
        bound_before, self._bound = self._bound, True  # the answer may be lost, or not awaited
        tried = {ua.destination}
        response = await ua.transact(
            "REGISTER", ua.registrar, self._headers(expires), self._next_seq
        )
        while (response is None or response.status == 503) and ua.destination not in tried:
            tried.add(ua.destination)  # `unreachable` moved it on
            headers = self._headers(expires)
            response = await ua.transact("REGISTER", ua.registrar, headers, self._next_seq)
        if not bound_before and (response is None or response.status >= 300):
            # Refused, or no answer at all: nothing of ours is there. (After an earlier
            # success its binding may still be, until it expires.)
            self._bound = False
        result = Registration(at=time.time())
        if response is None:
            # A TCP / TLS connection that failed says why (engine/sip/stream.py).
            result.state = "failed"
            failure = ua.transport.failure or "the PBX did not answer"
            result.detail = f"{failure}{dns_failure}"
        else:
            result.code, result.reason = response.status, response.reason
            if 200 <= response.status < 300:
                granted = response.expires
                contact = response.contact
                expiry = (contact and contact.params.get("expires")) or ""
                if expiry.isdigit():  # the Contact's expires (a bare `;expires` is no number)
                    granted = int(expiry)
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
        self.failures += result.state == "failed"
        return result, response

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def keep(self, expires: int = 3600, max_backoff: float = 300.0) -> None:
        """Register now and refresh before expiry; after a failure retry with backoff."""

        async def keeper() -> None:
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

    async def unregister(self, wait: float = UNREGISTER_WAIT) -> bool:
        """Withdraw our binding when the PBX may hold one: REGISTER with `Expires: 0` for the
        Contact we registered (section 10.2.2), the challenge answered as for any REGISTER,
        waiting for the final answer `wait` seconds at most. True when the PBX confirmed."""
        if not self._bound:
            return False
        self._bound = False
        ua = self.ua
        response = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                response = await ua.transact(
                    "REGISTER", ua.registrar, self._headers(0), self._next_seq
                )
        result = Registration("unregistered", at=time.time())
        result.detail = "unregistered without the PBX's answer"
        if response is not None:
            result.code, result.reason = response.status, response.reason
            if 200 <= response.status < 300:
                result.detail = "unregistered"
            else:
                result.detail = f"the PBX answered {response.status} {response.reason}"
        self.registration = result
        return result.detail == "unregistered"

    async def stop(self) -> None:
        """No more refreshes, and our binding withdrawn (the user agent closes)."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await self.unregister()
