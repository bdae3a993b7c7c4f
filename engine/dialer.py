"""One tenant's engine: the loop that ties presence, pacing, leads, the user agent and CDRs.

Each tick (`TICK` seconds, and at once when the portal wakes it: an operator went on line,
a lead arrived, settings changed) the engine:

1. counts the free operators (engine/presence.py);
2. asks the pacer how many new calls to start (engine/_pacer.pyx);
3. claims that many due leads from the database in one transaction (the store marks them
   `dialing` and opens their attempts), so no lead is ever in two calls at once;
4. places each call through the user agent; when a customer answers, it takes a free
   operator (preferring the one who served the lead before), publishes the screen pop and
   sends REFER to that operator's extension; nobody free: `no_free_operator`;
5. writes each finished attempt and the lead's next step (reached, retry at the tenant's
   retry time for the outcome, exhausted) in batches, off the event loop.

The database work is behind `Store` (engine/store.py; webapp/services/dialing.py implements
it); it runs in the host's database thread, so SQL never blocks the SIP timers.

Fencing: an engine starts by taking the tenant's next fencing token (`Store.start_engine`).
Its claims and attempt writes carry the token and the database refuses them once a newer
engine started (`Refused`); its presence scripts and published state carry it too, and Redis
refuses them likewise (engine/presence.py). An engine refused once stops at once.

Stopping (dialing off, lease lost, refused, drain) ends the engine's calls within
`END_GRACE`: CANCEL what rings, BYE what is answered and not handed over (docs/engine.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

from redis.exceptions import RedisError

from engine import logs
from engine.bus import TenantKeys, event
from engine.campaigns import Load, Share, apportion, divide, proportions, ranks
from engine.compiled import load
from engine.formats import FormatError, render_dial_uri, render_refer_headers, render_refer_uri
from engine.metrics import (
    ATTEMPTS,
    CALLS_STARTED,
    PACER_CALLS_ASKED,
    REGISTRATION_FAILURES,
    SIP_RETRANSMISSIONS,
    SIP_STRANGERS,
    Tally,
)
from engine.outcomes import Detail, Outcome, TransferResult
from engine.pacing_modes import MODES, PacingMode
from engine.presence import (
    FREE,
    OFF_LINE,
    TRANSFERRING,
    WRAP_UP,
    Presence,
    decode_all,
    fenced,
)
from engine.sip.transaction import DEFAULT_TIMERS, Timers
from engine.sip.ua import CallRecord, UserAgent
from engine.store import Claimed, Finished, Refused, Store, TenantSettings, Window

if TYPE_CHECKING:
    from engine.pacer import Pacer
else:  # the Cython pacer, or its twin (engine/compiled.py)
    Pacer = load("engine._pacer", "engine.pacer").Pacer

log = logging.getLogger(__name__)

#: Seconds between ticks when nothing wakes the engine.
TICK = 0.1
#: Seconds between looks for due leads after a look found none. New leads, operators going
#: on line and settings wake the engine at once; this only finds retries that became due.
IDLE_POLL = 1.0
#: Calls in a row that got no response at all before the engine stops dialing and checks
#: the PBX with a REGISTER: a dead PBX must not burn through the leads as `unavailable`.
PBX_SILENCE_LIMIT = 3
#: REFERs refused in a row before the engine warns that the PBX refuses REFER.
REFER_REFUSED_LIMIT = 3
#: Seconds a stopping engine gives its calls to end (engine/sip/call.py `Call.end`).
END_GRACE = 1.0
#: Seconds the engine waits for the result of a transfer (the final NOTIFY).
TRANSFER_WAIT = 10.0
#: Why an engine is not dialing (the `reason` of its live state); the portal words them.
REASONS = (
    "stopping",
    "pbx_unreachable",
    "registering",
    "registration_failed",
    "pbx_silent",
    "no_operator_on_line",
    "no_free_operator",
    "no_due_leads",
    "campaigns_paused",
    "outside_calling_hours",
    "dial_format_wrong",
)


# --- pure decisions ------------------------------------------------------------------------


def lead_after(
    settings: TenantSettings, attempts: int, attempt: CallRecord
) -> tuple[str, datetime | None]:
    """What becomes of a lead after an attempt: (status, next attempt time).

    Reached only when the customer answered and was handed to an operator (the outcome is
    `answered` only then); otherwise the lead is retried after the tenant's retry time for
    the outcome, until the attempt limit."""
    if attempt.outcome == Outcome.ANSWERED:
        return "reached", None
    if attempts >= settings.max_attempts:
        return "exhausted", None
    outcome = attempt.outcome or Outcome.TECHNICAL_ERROR
    ended = datetime.fromtimestamp(attempt.end_at or time.time(), UTC)
    return "retry", ended + timedelta(minutes=settings.retry_minutes[outcome])


@lru_cache(maxsize=1)
def _all_zones() -> tuple[tuple[str, ZoneInfo], ...]:
    return tuple((name, ZoneInfo(name)) for name in sorted(available_timezones()))


def _inside(hours: tuple[clock, clock], local: datetime) -> bool:
    start, end = hours
    now = local.time()
    return start <= now < end if start <= end else (now >= start or now < end)


def calling_window(settings: TenantSettings, now: datetime) -> Window:
    """The zones where it is calling time now (customers' local time)."""
    start, end = settings.calling_hours
    tenant_open = _inside(settings.calling_hours, now.astimezone(ZoneInfo(settings.time_zone)))
    if start == end:  # all day
        return Window(True, None)
    zones = tuple(
        name for name, zone in _all_zones() if _inside(settings.calling_hours, now.astimezone(zone))
    )
    return Window(tenant_open, None if len(zones) == len(_all_zones()) else zones)


def lost_call_bound(settings: TenantSettings, bye_grace: float = 1.0) -> float:
    """Seconds after its INVITE that a call of an engine could still be going: it rings out,
    the transfer waits for its result, the PBX gets its moment for the BYE, the stop's
    grace. A successor counts a lost engine's calls in flight that long, and does not dial
    their leads sooner."""
    return settings.ring_timeout + TRANSFER_WAIT + bye_grace + END_GRACE


def pacing_mode(settings: TenantSettings) -> str:
    """The pacer's mode for the tenant's setting (engine/pacer.py; docs/pacing.md); anything
    unknown is paced progressively, which never abandons a customer."""
    return settings.pacing_mode if settings.pacing_mode in MODES else PacingMode.PROGRESSIVE


#: Pacing modes that look at operators on line and learn from the calls (engine/pacer.py).
LEARNING_MODES = (PacingMode.PREDICTIVE, PacingMode.ADAPTIVE)
#: Seconds between reads of the measured abandon rate over the regulatory window.
ABANDON_WINDOW_READ = 60.0


# --- the engine ----------------------------------------------------------------------------


class TenantEngine:
    """The engine of one tenant, run as a task by an engine host."""

    def __init__(
        self,
        tenant_id: int,
        *,
        store: Store,
        redis,
        prefix: str,
        engine_id: str,
        database: Callable,
        local_host: str = "0.0.0.0",
        timers: Timers = DEFAULT_TIMERS,
        heartbeat_ttl: float = Presence.DEFAULT_HEARTBEAT_TTL,
        register_backoff: float = 30.0,
        bye_grace: float = 1.0,
        idle_poll: float = IDLE_POLL,
        metrics: Tally | None = None,
        target_allowed: Callable[[str], bool] | None = None,
    ):
        self.tenant_id = tenant_id
        self.log = logging.LoggerAdapter(log, {"tenant_id": tenant_id, "engine": engine_id})
        self.store = store
        self.redis = redis
        self.keys = TenantKeys(prefix, tenant_id)
        self.presence = Presence(redis, self.keys, heartbeat_ttl)
        self.engine_id = engine_id
        self.database = database  # awaitable runner of store calls in the database thread
        self.local_host = local_host
        self.timers = timers
        self.register_backoff = register_backoff
        self.bye_grace = bye_grace
        self.idle_poll = idle_poll
        #: Whether the deployment lets the engine send to this address (the PBX's, or the
        #: outbound proxy's, as resolved now); None: anywhere.
        self.target_allowed = target_allowed
        self.claim_at = 0.0  # no look for due leads before this (monotonic seconds)
        #: Campaigns whose last claim found too few leads: not divided before (monotonic).
        self.campaign_idle: dict[int, float] = {}
        #: Calls each campaign started lately, for the division of operators.
        self.campaign_load = Load()
        #: Who may take a customer of each campaign, with their ranks (None: anyone), as
        #: last loaded (`campaigns.ranks`).
        self.among: dict[int, dict[int, int] | None] = {}
        #: The operators who work a running campaign (None: everyone does).
        self.workers: frozenset[int] | None = None
        self.settings: TenantSettings | None = None
        self.ua: UserAgent | None = None
        self.pacer: Pacer | None = None
        self.calls: set[asyncio.Task] = set()
        self.done: list[Finished] = []
        self.wakened = asyncio.Event()
        self.stopping = False
        self.reload = True
        self.pbx_silent = 0
        self.refer_refused = 0
        self.epoch: int | None = None  # the fencing token, from Store.start_engine
        self.fenced = False  # a newer engine runs the tenant: write nothing more
        #: Operators taken by this engine's calls, until the transfer's end.
        self.taken: set[int] = set()
        #: When (monotonic) each call a lost engine left may be over at the latest.
        self.inherited: list[float] = []
        self.state: dict = {}
        self.window_at = 0.0
        self.window: Window | None = None
        self.sweep_at = 0.0
        self.idle_at = 0.0
        self.idle_reason: tuple[str, str] = ("", "")
        self._ua_generation: list[UserAgent] = []
        self._recheck: asyncio.Future | None = None
        self.metrics = metrics or Tally()  # the host's, which publishes them (engine/metrics.py)
        self._sip_counted: dict[int, tuple[int, int, int]] = {}  # user agent -> counts published
        #: Operators handed a customer: when (wall clock), and when their wrap-up began once
        #: seen, to learn handle and wrap-up times.
        self.handling: dict[int, tuple[float, float | None]] = {}
        self.abandon_read_at = 0.0

    # --- control from the host --------------------------------------------------------------

    def wake(self, reason: str = "") -> None:
        self.claim_at = 0.0  # new leads, free operators, a campaign run again, ...: look now
        self.campaign_idle.clear()
        if reason in ("settings", "operators", "campaigns"):
            self.reload = True
        self.wakened.set()

    def stop(self, why: str = "") -> None:
        """Start no new call and end the calls in flight (CANCEL what rings, BYE what is
        answered and not handed over): run() returns within about END_GRACE."""
        if not self.stopping and why:
            self.log.info("tenant %s: engine %s stops: %s", self.tenant_id, self.epoch, why)
        self.stopping = True
        for ua in self._ua_generation:
            ua.end_calls(END_GRACE)
        self.wakened.set()

    def _refused(self, error: BaseException) -> None:
        """The database or Redis refused us: a newer engine runs the tenant (or dialing is
        off by now). Stop at once; after a fence, write nothing more anywhere."""
        if isinstance(error, Refused) and error.reason == "dialing_off":
            self.stop("dialing is off")
            return
        self.log.warning(
            "tenant %s: engine %s refused, a newer engine runs the tenant: %s",
            self.tenant_id,
            self.epoch,
            error,
        )
        self.fenced = True
        self.stop("fenced")

    @property
    def in_flight(self) -> int:
        """Our calls, and those a lost engine left that may still be going."""
        if self.inherited:
            now = time.monotonic()
            self.inherited = [until for until in self.inherited if until > now]
        return len(self.calls) + len(self.inherited)

    def count_sip(self) -> None:
        """Add the user agents' SIP retransmissions, registration failures and datagrams from
        strangers since the last count to the metrics (the host calls it before it publishes
        them)."""
        for ua in self._ua_generation:
            self._count_user_agent(ua)

    def _count_user_agent(self, ua: UserAgent, closing: bool = False) -> None:
        layer = getattr(ua, "layer", None)
        if layer is None:
            return
        now = (layer.retransmissions, ua.registration_failures, ua.transport.stats.foreign)
        seen = self._sip_counted.pop(id(ua), (0, 0, 0))
        for name, count, before in zip(
            (SIP_RETRANSMISSIONS, REGISTRATION_FAILURES, SIP_STRANGERS), now, seen, strict=True
        ):
            if count > before:
                self.metrics.add(name, count - before, tenant=self.tenant_id)
        if not closing:
            self._sip_counted[id(ua)] = now

    async def _close_user_agent(self, ua: UserAgent) -> None:
        self._count_user_agent(ua, closing=True)
        await ua.close()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.epoch = await self.database(self.store.start_engine, self.tenant_id)
            self.presence = Presence(
                self.redis, self.keys, self.presence.heartbeat_ttl, epoch=self.epoch
            )
            self.log.info("tenant %s: engine %s starts", self.tenant_id, self.epoch)
            recovered = False
            while not (self.stopping and not self.calls):
                try:
                    if self.reload:
                        if not await self._load():
                            break
                        if not recovered:
                            await self._recover()
                            recovered = True
                    await self._tick()
                except RedisError as error:  # Redis restarting: the database still holds
                    if fenced(error):
                        self._refused(error)
                    else:
                        self.log.warning("tenant %s: Redis: %s", self.tenant_id, error)
                        await asyncio.sleep(0.5)
                except Refused as error:
                    self._refused(error)
                await self._flush()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel
                # that comes in the same loop turn as the wake-up, and the engine went on.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self.wakened.wait()
                self.wakened.clear()
            await self._flush()
        finally:
            for task in list(self.calls):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flush()
            for ua in self._ua_generation:
                await self._close_user_agent(ua)
            self._ua_generation.clear()
            with contextlib.suppress(RedisError):
                await self._publish_state({"state": "stopped", "engine": self.engine_id})

    async def _recover(self) -> None:
        """Close what a lost engine of the tenant left: its open attempts (Store.recover),
        the operators it had taken (handed over: busy with the customer; else free), and
        count its calls in flight while they could still be going."""
        settings = self.settings
        assert settings is not None  # loaded first
        handed: dict[int, int] = {}
        taken: dict[int, int] = {}
        try:
            for operator, state in decode_all(await self.presence.states()).items():
                if state.state == TRANSFERRING:
                    taken[operator] = state.lead_id or 0
            handed = {lead: operator for operator, lead in taken.items() if lead}
        except RedisError as error:
            self.log.warning("tenant %s: operators not recovered: %s", self.tenant_id, error)
        bound = lost_call_bound(settings, self.bye_grace)
        lost = await self.database(
            self.store.recover, self.tenant_id, self.engine_id, self.epoch, settings, handed, bound
        )
        closed = {item.lead_id for item in lost if item.handed}
        try:
            for operator, lead in taken.items():
                if lead in closed:  # the customer may be talking to them
                    await self.presence.transferred(operator, True, settings.failed_transfers_limit)
                else:
                    await self.presence.release(operator)
        except RedisError as error:
            if fenced(error):
                raise Refused("fenced", str(error)) from error
            self.log.warning("tenant %s: operators not recovered: %s", self.tenant_id, error)
        now, wall = time.monotonic(), time.time()
        self.inherited = [now + bound - (wall - item.invite_at.timestamp()) for item in lost]
        if lost:
            self.log.warning(
                "tenant %s: closed %d attempts left by a lost engine (%d handed to operators)",
                self.tenant_id,
                len(lost),
                len(closed),
            )

    async def _load(self) -> bool:
        """(Re)load the tenant's settings; a changed SIP account gets a new user agent."""
        settings = await self.database(self.store.settings, self.tenant_id)
        self.reload = False
        if settings is None or not settings.dialing_enabled:
            self.stop()
            return bool(self.calls)  # go on only to see the calls in flight end
        previous, self.settings = self.settings, settings
        self.among.update(ranks(settings.campaigns, settings.operators))
        # None running: everyone counts, and the claim says why nothing is due.
        everyone = not settings.campaigns or any(c.weights is None for c in settings.campaigns)
        self.workers = (
            None
            if everyone
            else frozenset(op for c in settings.campaigns for op in c.weights or ())
        )
        mode = pacing_mode(settings)
        if (
            self.pacer is None
            or previous is None
            or (
                (
                    previous.pacing_mode,
                    previous.multiplier,
                    previous.max_calls_at_once,
                    previous.max_calls_per_second,
                    previous.abandon_rate_cap,
                )
                != (
                    settings.pacing_mode,
                    settings.multiplier,
                    settings.max_calls_at_once,
                    settings.max_calls_per_second,
                    settings.abandon_rate_cap,
                )
            )
        ):
            self.pacer = Pacer(
                mode,
                settings.multiplier,
                settings.max_calls_at_once,
                float(settings.max_calls_per_second),
                time.monotonic(),
                settings.abandon_rate_cap,
            )
            self.abandon_read_at = 0.0
        if previous is not None and (
            previous.abandon_rate_window_days != settings.abandon_rate_window_days
        ):
            self.abandon_read_at = 0.0
        self.window_at = 0.0
        if previous is None or previous.account != settings.account:
            await self._new_user_agent()
        return True

    async def _new_user_agent(self) -> None:
        assert self.settings is not None  # loaded first
        ua = UserAgent(self.settings.account, local_host=self.local_host, timers=self.timers)
        try:
            await ua.start()
            where = ua.destination[0]
            if self.target_allowed is not None and not self.target_allowed(where):
                await ua.close()  # a name that now leads into a private network: not sent to
                raise OSError(
                    f"{where} is not a public address, and this deployment does "
                    "not send to private ones"
                )
        except OSError as error:  # the PBX's name does not resolve, no route...
            self.log.warning("tenant %s: cannot reach the PBX: %s", self.tenant_id, error)
            self.ua = None
            self.idle_reason = ("pbx_unreachable", str(error))
            self.reload = True  # try again on the next tick
            await asyncio.sleep(1.0)
            return
        ua.keep_registered(max_backoff=self.register_backoff)
        old, self.ua = self.ua, ua
        self._ua_generation.append(ua)
        if old is not None and not any(getattr(t, "ua", None) is old for t in self.calls):
            self._ua_generation.remove(old)
            await self._close_user_agent(old)

    async def _tick(self) -> None:
        now = time.monotonic()
        settings = self.settings
        if settings is None:
            return
        if now >= self.sweep_at:
            self.sweep_at = now + 1.0
            changed = await self.presence.sweep(settings.wrap_up_timeout)
            for operator, state in zip(changed[::2], changed[1::2], strict=True):
                if (state.decode() if isinstance(state, bytes) else state) == OFF_LINE:
                    # the console went quiet: told like the failed-transfer limit (reports)
                    gone = event("operator_off_line", operator_id=int(operator), reason="heartbeat")
                    await self._tell(int(operator), gone)
            await self._release_stale_transfers()
            await self._close_idle_user_agents()
        reason, detail = await self._start_calls(settings, now)
        await self._publish_state(
            {
                "state": "stopping" if self.stopping else ("dialing" if not reason else "waiting"),
                "reason": reason,
                "detail": detail,
                "warning": "pbx_refuses_refer" if self.refer_refused >= REFER_REFUSED_LIMIT else "",
                "in_flight": self.in_flight,
                "registration": self.ua.registration.state if self.ua else "none",
                "registration_detail": self.ua.registration.detail if self.ua else "",
                "engine": self.engine_id,
            }
        )

    async def _release_stale_transfers(self) -> None:
        """Free operators left `transferring` by no call of ours for longer than a transfer
        may take: an engine that stopped between taking them and the transfer's result."""
        stale = time.time() - TRANSFER_WAIT - self.bye_grace
        for operator, state in decode_all(await self.presence.states()).items():
            if state.state == TRANSFERRING and operator not in self.taken and state.since < stale:
                self.log.warning(
                    "tenant %s: operator %s freed: left transferring", self.tenant_id, operator
                )
                await self.presence.release(operator)

    async def _start_calls(self, settings: TenantSettings, now: float) -> tuple[str, str]:
        """Start the calls the pacer allows; returns why not dialing, as a reason code
        (REASONS) and a detail from the PBX or the format; ("", "") while dialing."""
        if self.stopping:
            return "stopping", ""
        if self.ua is None:
            return self.idle_reason
        registration = self.ua.registration
        if registration.state != "registered":
            self.pbx_silent = 0
            if registration.state == "failed":
                return "registration_failed", registration.detail
            return "registering", ""
        if self.pbx_silent >= PBX_SILENCE_LIMIT:
            return "pbx_silent", ""
        if self.workers is None:
            free = await self.presence.free_count()
        else:  # only the operators of a running campaign count
            free = sum(int(op) in self.workers for op in await self.presence.free_operators())
        on_line, wrapping_up = -1, 0
        if pacing_mode(settings) in LEARNING_MODES:  # they count the busy operators too
            on_line, wrapping_up = await self._watch_operators(settings, now)
            if on_line == 0:
                return "no_operator_on_line", ""
        elif free == 0:
            return (
                "no_free_operator" if await self.presence.states() else "no_operator_on_line"
            ), ""
        if now < self.claim_at:
            return self.idle_reason
        if self.reload:  # the settings changed while this tick waited: claim with the new ones
            return self.idle_reason
        pacer = self.pacer
        assert pacer is not None  # made with the settings
        count = pacer.calls_to_start(free, self.in_flight, now, on_line, wrapping_up)
        if count <= 0:
            return ("no_free_operator", "") if free == 0 else ("", "")
        if now >= self.window_at:  # the calling window moves slowly: once a minute
            self.window_at = now + 60.0
            self.window = calling_window(settings, datetime.now(UTC))
        ua = self.ua
        where: dict[str, Any] = {
            "host": settings.account.host,
            "port": settings.account.port,
            "server": ua.contact_host,
        }

        def dial_uri(phone: str) -> str:
            return render_dial_uri(settings.dial_format, number=phone.lstrip("+"), **where)

        try:
            claimed = await self._claim(settings, count, free, now, dial_uri)
        except FormatError as error:
            return "dial_format_wrong", error.message
        if self.stopping:  # stopped while the claim ran: these are not dialed
            stamp = time.time()
            for lead in claimed:
                attempt = CallRecord(
                    lead.dialed_uri,
                    outcome=Outcome.TECHNICAL_ERROR,
                    detail=Detail.ENGINE_STOPPED,
                    end_at=stamp,
                )
                status, next_at = lead_after(settings, lead.attempts, attempt)
                self.done.append(
                    Finished(lead.attempt_id, lead.lead_id, None, attempt, status, next_at)
                )
            return "stopping", ""
        self.metrics.add(PACER_CALLS_ASKED, count, tenant=self.tenant_id)
        self.metrics.add(CALLS_STARTED, len(claimed), tenant=self.tenant_id)
        # Leads not found: give back the tokens; the next tick asks again.
        pacer.give_back(count - len(claimed), now)
        for lead in claimed:
            task = asyncio.ensure_future(self._call(ua, settings, lead))
            task.ua = ua  # type: ignore[attr-defined]  # which user agent the call is on
            task.campaign_id = lead.campaign_id  # type: ignore[attr-defined]
            self.calls.add(task)
            task.add_done_callback(self._call_done)
        if claimed:
            return "", ""
        self.claim_at = now + self.idle_poll
        if now >= self.idle_at:
            self.idle_at = now + 1.0
            self.idle_reason = (await self.database(self.store.idle_reason, settings), "")
        return self.idle_reason

    async def _claim(
        self,
        settings: TenantSettings,
        count: int,
        free_count: int,
        now: float,
        dial_uri: Callable[[str], str],
    ) -> list[Claimed]:
        """Claim `count` leads of the running campaigns. With several, the calls are divided
        among them as the free operators are (engine/campaigns.py; by the operators on line
        when the pacer dials ahead of the frees), and what a campaign without due leads
        leaves goes to those that had enough; such a campaign is skipped for `idle_poll`."""

        def claim(wanted: int, campaigns: dict[int, int] | None = None):
            return self.database(
                self.store.claim,
                settings,
                self.engine_id,
                self.epoch,
                wanted,
                self.window,
                dial_uri,
                campaigns,
            )

        if len(settings.campaigns) == 0 or (
            len(settings.campaigns) == 1 and settings.campaigns[0].weights is None
        ):  # none running (nothing is due), or one that everyone works
            return await claim(count)
        shares = [
            Share(c.campaign_id, c.weights, now >= self.campaign_idle.get(c.campaign_id, 0.0))
            for c in settings.campaigns
        ]
        if all(c.weights is None for c in settings.campaigns):  # everyone works every one:
            free = list(range(free_count))  # who is free does not matter, how many does
        else:
            free = [int(op) for op in await self.presence.free_operators()]
        counted: dict[int, float] = {
            c: len(ops) for c, ops in divide(free, shares, self.campaign_load.now(now)).items()
        }
        pool = free
        if not any(counted.values()):
            pool = [int(op) for op in await self.presence.states()]
            counted = proportions(pool, shares)
        # Each campaign's part of what the pacer wants in flight, less its calls in flight:
        # a campaign whose calls already ring for its operators starts no more for them.
        flying: dict[int, int] = {}
        for task in self.calls:
            campaign = getattr(task, "campaign_id", 0)
            flying[campaign] = flying.get(campaign, 0) + 1
        whole = sum(counted.values())
        target = count + self.in_flight
        weights = {
            c: room
            for c, part in counted.items()
            if part > 0 and (room := target * part / whole - flying.get(c, 0)) > 0
        }
        claimed: list[Claimed] = []
        started: dict[int, int] = {}

        async def take(plan: dict[int, int]) -> None:
            got = await claim(sum(plan.values()), plan)
            claimed.extend(got)
            for campaign_id, wanted in plan.items():
                calls = sum(1 for lead in got if lead.campaign_id == campaign_id)
                started[campaign_id] = started.get(campaign_id, 0) + calls
                self.campaign_load.started(campaign_id, calls)
                if calls < wanted:
                    self.campaign_idle[campaign_id] = now + self.idle_poll

        plan = {c: n for c, n in apportion(count, weights).items() if n > 0}
        if plan:
            await take(plan)
        # What campaigns short of leads left goes to those that are not, each up to its part
        # of the calls by the operators here who work it: no more customers than those
        # operators could take (the progressive mode's promise holds per campaign).
        more: dict[int, int] = {}
        left = count - len(claimed)
        for share in shares:
            if left <= 0 or not share.wanting:
                continue
            if self.campaign_idle.get(share.campaign_id, 0.0) > now:
                continue
            works = sum(1 for op in pool if share.weight(op) > 0)
            limit = (
                -(-target * works // max(1, len(pool)))
                - flying.get(share.campaign_id, 0)
                - started.get(share.campaign_id, 0)
            )
            if (wanted := min(left, limit)) > 0:
                more[share.campaign_id] = wanted
                left -= wanted
        if more:
            await take(more)
        return claimed

    async def _watch_operators(self, settings: TenantSettings, now: float) -> tuple[int, int]:
        """For the pacing modes that learn: the operators on line and those of them in
        wrap-up; the handle time (and the wrap-up time, when seen) of each operator free
        again since their customer was handed over; and (every minute) the abandon rate
        measured over the regulatory window, from the database."""
        pacer = self.pacer
        assert pacer is not None  # made with the settings
        states = decode_all(await self.presence.states())
        for operator, (since, wrap_since) in list(self.handling.items()):
            state = states.get(operator)
            if state is None or state.state == FREE:  # finished the lead, or went off line
                freed = state.since if state is not None else time.time()
                wrap = max(0.0, freed - wrap_since) if wrap_since is not None else -1.0
                pacer.handled(max(0.0, freed - since), now, wrap)
                del self.handling[operator]
            elif state.state == WRAP_UP and wrap_since is None:  # the talk is over
                self.handling[operator] = (since, state.since)
        if now >= self.abandon_read_at:
            self.abandon_read_at = now + ABANDON_WINDOW_READ
            window = datetime.now(UTC) - timedelta(days=settings.abandon_rate_window_days)
            answered, abandoned = await self.database(
                self.store.abandon_counts, self.tenant_id, window
            )
            pacer.set_window(answered, abandoned)
        if self.workers is not None:  # only the operators of a running campaign count
            states = {op: state for op, state in states.items() if op in self.workers}
        return len(states), sum(1 for state in states.values() if state.state == WRAP_UP)

    def _observe(self, attempt: CallRecord, operator: int | None) -> None:
        """Tell the pacer how the attempt went (all modes; the learning ones use it)."""
        pacer = self.pacer
        assert pacer is not None  # the caller looked
        now = time.monotonic()
        if attempt.invite_at is not None:
            answered = attempt.answer_at is not None
            ended = attempt.answer_at if answered else attempt.end_at
            pacer.ringing_ended(answered, (ended or attempt.invite_at) - attempt.invite_at, now)
        if attempt.detail == Detail.NO_FREE_OPERATOR:
            pacer.abandoned(now)
        if operator is not None and attempt.transfer_result in (
            TransferResult.SUCCEEDED,
            TransferResult.UNCONFIRMED,
        ):
            self.handling[operator] = (attempt.refer_at or time.time(), None)

    def _call_done(self, task: asyncio.Task) -> None:
        self.calls.discard(task)
        self.wakened.set()

    async def _close_idle_user_agents(self) -> None:
        for ua in list(self._ua_generation):
            if ua is not self.ua and not any(getattr(t, "ua", None) is ua for t in self.calls):
                self._ua_generation.remove(ua)
                await self._close_user_agent(ua)

    # --- one call ---------------------------------------------------------------------------

    async def _call(self, ua: UserAgent, settings: TenantSettings, lead: Claimed) -> None:
        # Every record of this call's task names it (the user agent adds the SIP Call-ID).
        logs.bind(
            tenant_id=self.tenant_id,
            engine=self.engine_id,
            attempt_id=lead.attempt_id,
            lead_id=lead.lead_id,
        )
        operator: int | None = None
        where = {
            "host": settings.account.host,
            "port": settings.account.port,
            "server": ua.contact_host,
        }

        async def pick_operator():
            nonlocal operator
            if self.stopping:
                return None
            try:
                taken = await self.presence.take(
                    lead.lead_id,
                    lead.last_operator_id,
                    among=self.among.get(lead.campaign_id),
                )
            except RedisError as error:  # nobody can be taken: the customer is let go
                if fenced(error):
                    self._refused(error)
                self.log.warning("tenant %s: no operator taken: %s", self.tenant_id, error)
                return None
            if taken is None:
                return None
            operator = int(taken)
            self.taken.add(operator)
            extension = self.settings.operators.get(operator)
            if extension is None:  # added since the last load
                fresh = await self.database(self.store.settings, self.tenant_id)
                extension = fresh.operators.get(operator) if fresh else None
            if extension is None:  # deactivated, or deleted: not a target
                await self.presence.go_off_line(operator)
                operator = None
                return None
            uri = render_refer_uri(settings.refer_format, extension=extension, **where)
            headers = render_refer_headers(settings.refer_headers, extension=extension, **where)
            try:
                await self._screen_pop(operator, lead)
            except RedisError as error:  # the console asks for what it missed on reconnect
                self.log.warning("tenant %s: screen pop not sent: %s", self.tenant_id, error)
            return uri, headers

        try:
            attempt = await ua.place_call(
                lead.dialed_uri,
                pick_operator,
                ring_timeout=settings.ring_timeout,
                transfer_timeout=TRANSFER_WAIT,
                bye_grace=self.bye_grace,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("tenant %s: attempt %s failed", self.tenant_id, lead.attempt_id)
            attempt = CallRecord(
                lead.dialed_uri, outcome=Outcome.TECHNICAL_ERROR, end_at=time.time()
            )
        if attempt.detail == Detail.NO_RESPONSE:
            self.pbx_silent += 1
            if self.pbx_silent == PBX_SILENCE_LIMIT:  # check the PBX before dialing again
                ua.registration.state = "registering"
                self._recheck = asyncio.ensure_future(self._recheck_pbx(ua))
        elif attempt.sip_code is not None:
            self.pbx_silent = 0
        if attempt.detail == Detail.REFER_REFUSED:
            self.refer_refused += 1
        elif attempt.transfer_result is not None:
            self.refer_refused = 0
        if self.pacer is not None:
            self._observe(attempt, operator)
        if operator is not None:
            try:
                await self._after_transfer(settings, operator, lead, attempt)
            except RedisError as error:  # the console re-publishes presence when Redis is back
                if fenced(error):
                    self._refused(error)
                self.log.warning(
                    "tenant %s: operator %s not updated: %s", self.tenant_id, operator, error
                )
            finally:
                self.taken.discard(operator)
        self.metrics.add(ATTEMPTS, outcome=attempt.outcome or "", detail=attempt.detail or "")
        log.debug(
            "attempt ended: %s %s, SIP %s, transfer %s",
            attempt.outcome,
            attempt.detail,
            attempt.sip_code,
            attempt.transfer_result,
            extra={"call_id": attempt.call_id, "operator_id": operator},
        )
        status, next_at = lead_after(settings, lead.attempts, attempt)
        self.done.append(
            Finished(lead.attempt_id, lead.lead_id, operator, attempt, status, next_at)
        )

    async def _recheck_pbx(self, ua: UserAgent) -> None:
        """REGISTER until the PBX answers again, then dial again."""
        backoff = 0.5
        while (await ua.register()).state != "registered":
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.register_backoff)
        self.pbx_silent = 0
        self.wakened.set()

    async def _after_transfer(
        self, settings: TenantSettings, operator: int, lead: Claimed, attempt: CallRecord
    ) -> None:
        if attempt.refer_at is None:  # taken, but the customer was gone before the REFER
            await self.presence.release(operator)
            return
        succeeded = attempt.transfer_result in (
            TransferResult.SUCCEEDED,
            TransferResult.UNCONFIRMED,
        )
        state = await self.presence.transferred(
            operator, succeeded, settings.failed_transfers_limit
        )
        if succeeded:
            await self._tell(
                operator,
                event(
                    "transferred",
                    operator_id=operator,
                    lead_id=lead.lead_id,
                    attempt_id=lead.attempt_id,
                ),
            )
        else:  # the card says so, and the live wall
            await self._tell(
                operator,
                event(
                    "transfer_failed",
                    operator_id=operator,
                    lead_id=lead.lead_id,
                    attempt_id=lead.attempt_id,
                    detail=str(attempt.detail or ""),
                    sip_code=attempt.transfer_sip_code,
                ),
            )
            if (state.decode() if isinstance(state, bytes) else state) == OFF_LINE:
                await self.redis.hset(self.keys.off_line_why, operator, "failed_transfers")
                await self._tell(
                    operator,
                    event("operator_off_line", operator_id=operator, reason="failed_transfers"),
                )

    async def _screen_pop(self, operator: int, lead: Claimed) -> None:
        await self._tell(
            operator,
            event(
                "screen_pop",
                operator_id=operator,
                lead_id=lead.lead_id,
                attempt_id=lead.attempt_id,
                at=time.time(),
            ),
        )

    async def _tell(self, operator: int, payload: str) -> None:
        """An event for one operator's console (a capped stream it resumes from after a
        drop) and for the live wall (pub/sub)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.pops(operator), {"event": payload}, maxlen=100, approximate=True)
        pipe.publish(self.keys.events, payload)
        await pipe.execute()

    # --- writing ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Write the finished attempts (one transaction for all that ended since the last)."""
        if not self.done:
            return
        batch, self.done = self.done, []
        if self.fenced:  # our successor closed these attempts (Store.recover)
            self.log.warning(
                "tenant %s: %d attempts not written: fenced", self.tenant_id, len(batch)
            )
            return
        try:
            await self.database(self.store.finish, self.tenant_id, self.epoch, batch)
        except Refused as error:
            self._refused(error)
            self.log.warning(
                "tenant %s: %d attempts not written: %s", self.tenant_id, len(batch), error
            )
        except Exception:
            self.log.exception(
                "tenant %s: could not write %d attempts; will retry", self.tenant_id, len(batch)
            )
            self.done[:0] = batch
            await asyncio.sleep(1.0)

    async def _publish_state(self, state: dict) -> None:
        """The engine's live state and why it is not dialing, for the portal and ops; only
        while no newer engine of the tenant has written (a stopped engine's last word must not
        hide its successor's)."""
        if state == self.state or self.fenced:
            return
        self.state = state
        fields = {k: json.dumps(v) for k, v in state.items()}
        fields["updated_at"] = json.dumps(time.time())
        fields["epoch"] = json.dumps(self.epoch)
        payload = event("state", **state)
        try:
            await self.redis.eval(
                _PUBLISH_STATE,
                3,
                self.keys.state,
                self.keys.events,
                self.keys.epoch,
                payload,
                self.epoch or 0,
                *(item for pair in fields.items() for item in pair),
            )
        except RedisError as error:
            if not fenced(error):
                raise
            self.fenced = True


# KEYS: state, events channel, epoch. ARGV: event payload, epoch, field, value, ...
# The state is replaced only by the newest engine of the tenant.
_PUBLISH_STATE = """
local newest = tonumber(redis.call('GET', KEYS[3]) or '0')
if newest > tonumber(ARGV[2]) then return redis.error_reply('FENCED state') end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
"""
