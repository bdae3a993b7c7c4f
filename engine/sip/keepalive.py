"""Keeping an eye on the PBX between calls: an OPTIONS request every `KEEPALIVE_INTERVAL`
seconds (RFC 3261 section 11), the time its answer took, and what to do when it stops
answering.

Any final answer means the PBX is alive and reading us: 200, but also 404, 405 or a digest
challenge (nothing is answered with credentials here). No answer before the transaction's
own timeout (Timer F, 32 s with the default timers) means the PBX went silent, and the user
agent's owner hears of it at once (`on_silent`), without waiting for calls to time out; the
next OPTIONS goes out on time as usual, and the first answer after a silence is told too
(`on_answer`). What the admin sees is `Keepalive`: when the PBX last answered and how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.sip.transaction import ClientTransaction, token_hex

if TYPE_CHECKING:
    from engine.sip import Response
    from engine.sip.ua import UserAgent

#: Seconds between two OPTIONS to the PBX.
KEEPALIVE_INTERVAL = 30.0


@dataclass
class Keepalive:
    """What the PBX's answers to our OPTIONS say, for the admin."""

    #: The last answer's round trip, in milliseconds; None before the first answer.
    answer_ms: float | None = None
    #: When (epoch seconds) the PBX last answered, and with which status.
    answered_at: float | None = None
    status: int | None = None
    #: Since when (epoch seconds) the PBX has not answered; None while it answers.
    silent_since: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "answer_ms": self.answer_ms,
            "answered_at": self.answered_at,
            "status": self.status,
            "silent_since": self.silent_since,
        }


class KeepaliveClient:
    """A user agent's OPTIONS to its PBX, one at a time, every `interval` seconds."""

    def __init__(self, ua: UserAgent):
        self.ua = ua
        self.keepalive = Keepalive()
        self._tag = token_hex(6)
        self._task: asyncio.Task[None] | None = None

    def keep(
        self,
        interval: float = KEEPALIVE_INTERVAL,
        on_silent: Callable[[], None] | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> None:
        """Send OPTIONS every `interval` seconds (counted from each send; the first after
        one interval: the registration has just heard from the PBX), until `stop`;
        `on_silent` when one got no answer, `on_answer` when one was answered after a
        silence."""

        async def keeper() -> None:
            loop = asyncio.get_running_loop()
            due = loop.time() + interval
            while True:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due = loop.time() + interval
                was_silent = self.keepalive.silent_since is not None
                answered = await self.ping()
                if not answered and not was_silent and on_silent is not None:
                    on_silent()
                elif answered and was_silent and on_answer is not None:
                    on_answer()

        self._task = asyncio.get_running_loop().create_task(keeper())

    async def ping(self) -> bool:
        """One OPTIONS; True when the PBX answered it (`keepalive` says how fast)."""
        ua = self.ua
        done: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()

        def answered(tx: ClientTransaction, response: Response) -> None:
            if response.status == 503:  # overloaded or going down: the next server, if any
                ua.unreachable(tx.destination)
            if response.status >= 200 and not done.done():
                done.set_result(response)

        def timed_out(tx: ClientTransaction) -> None:
            ua.unreachable(tx.destination)  # the next one DNS gave, when there are several
            if not done.done():
                done.set_result(None)

        headers = [  # each one a request of its own (a PBX may refuse a Call-ID it has seen)
            ("Max-Forwards", "70"),
            ("From", f"<{ua.aor}>;tag={self._tag}"),
            ("To", f"<{ua.registrar}>"),
            ("Call-ID", f"{token_hex(10)}@autocall"),
            ("CSeq", "1 OPTIONS"),
            ("Contact", ua.contact),
            ("Accept", "application/sdp"),
        ]
        sent = time.perf_counter()
        ua.send("OPTIONS", ua.registrar, headers, b"", answered, timed_out)
        response = await done
        state = self.keepalive
        if response is None:
            if state.silent_since is None:
                state.silent_since = time.time()
            return False
        state.answer_ms = round((time.perf_counter() - sent) * 1000, 1)
        state.answered_at = time.time()
        state.status = response.status
        state.silent_since = None
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
