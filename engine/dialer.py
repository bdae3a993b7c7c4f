"""One tenant's engine: the loop that ties presence, pacing, leads, the user agent and CDRs.

Each tick (`TICK` seconds, and at once when the portal wakes it: an operator went on line,
a lead arrived, settings changed) the engine:

1. counts the free operators (engine/presence.py);
2. asks the pacer how many new calls to start (engine/_pacer.pyx);
3. claims that many due leads from the database in one transaction (the store marks them
   `dialing` and opens their attempts), so no lead is ever in two calls at once;
4. places each call through the user agent; when a customer answers, it takes a free
   operator (preferring a personal callback's operator, else the one who served the lead
   before), publishes the screen pop and sends REFER to that operator's extension; nobody
   free: it holds the customer up to the campaign's abandon tolerance for the first operator
   to go free, then the call is abandoned: REFER to the campaign's fallback
   (`sent_to_fallback`), else BYE (`no_free_operator`);
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
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, available_timezones

from redis.exceptions import RedisError

from engine import logs
from engine.bus import TenantKeys, event
from engine.campaigns import Load, Share, divide, proportions, ranks, reserve
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
from engine.outcomes import ABANDONED, Detail, Outcome, TransferResult
from engine.pacing_modes import MODES, PacingMode
from engine.presence import (
    BUSY,
    FREE,
    OFF_LINE,
    PREVIEWING,
    TRANSFERRING,
    WRAP_UP,
    OperatorState,
    Presence,
    decode_all,
    fenced,
)
from engine.preview import CALL, Preview, choices_of, dial_at, released, skipped
from engine.sip import nat
from engine.sip.keepalive import KEEPALIVE_INTERVAL
from engine.sip.locate import Locator
from engine.sip.nat import PortRange, PublicAddresses
from engine.sip.transaction import DEFAULT_TIMERS, Timers
from engine.sip.ua import CallRecord, LateResult, UserAgent
from engine.store import (
    EVERY_DAY,
    AccountSettings,
    CampaignSettings,
    Claimed,
    Finished,
    PutBack,
    Refused,
    Store,
    TenantSettings,
    Window,
)

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
#: Why an engine is not dialing (the `reason` of its live state); the portal words them.
REASONS = (
    "stopping",
    "pbx_unreachable",
    "no_sip_port",
    "registering",
    "registration_failed",
    "pbx_silent",
    "no_operator_on_line",
    "no_free_operator",
    "no_due_leads",
    "campaigns_paused",
    "outside_calling_hours",
    "dial_format_wrong",
    "no_sip_account",
    "before_start_date",
    "past_end_date",
)


# --- pure decisions ------------------------------------------------------------------------


def lead_after(
    campaign: CampaignSettings, attempts: int, attempt: CallRecord
) -> tuple[str, datetime | None]:
    """What becomes of a lead after an attempt: (status, next attempt time).

    Reached only when the customer answered and was handed to an operator (the outcome is
    `answered` only then); otherwise the lead is retried after its campaign's retry time for
    the outcome, until the campaign's attempt limit."""
    if attempt.outcome == Outcome.ANSWERED:
        return "reached", None
    if attempts >= campaign.max_attempts:
        return "exhausted", None
    outcome = attempt.outcome or Outcome.TECHNICAL_ERROR
    ended = datetime.fromtimestamp(attempt.end_at or time.time(), UTC)
    return "retry", ended + timedelta(minutes=campaign.retry_minutes[outcome])


@lru_cache(maxsize=1)
def _all_zones() -> tuple[tuple[str, ZoneInfo], ...]:
    return tuple((name, ZoneInfo(name)) for name in sorted(available_timezones()))


def _inside(hours: tuple[clock, clock], local: datetime) -> bool:
    start, end = hours
    now = local.time()
    if start == end:  # all day
        return True
    return start <= now < end if start < end else (now >= start or now < end)


def calling_window(campaign: CampaignSettings, time_zone: str, now: datetime) -> Window:
    """The zones where it is the campaign's calling time now (customers' local time): inside
    its calling hours, on one of its weekdays. `time_zone` is the tenant's, for leads that
    have none."""
    hours, days = campaign.calling_hours, campaign.weekdays

    def open_in(zone: ZoneInfo) -> bool:
        local = now.astimezone(zone)
        return local.isoweekday() in days and _inside(hours, local)

    tenant_open = open_in(ZoneInfo(time_zone))
    if hours[0] == hours[1] and days >= EVERY_DAY:  # every hour of every day
        return Window(True, None)
    zones = tuple(name for name, zone in _all_zones() if open_in(zone))
    return Window(tenant_open, None if len(zones) == len(_all_zones()) else zones)


def calendar_reason(campaign: CampaignSettings, time_zone: str, now: datetime) -> str:
    """Why the campaign's dates keep it from dialing today (in the tenant's zone):
    "before_start_date", "past_end_date", or ""."""
    today = now.astimezone(ZoneInfo(time_zone)).date()
    if campaign.start_date is not None and today < campaign.start_date:
        return "before_start_date"
    if campaign.end_date is not None and today > campaign.end_date:
        return "past_end_date"
    return ""


def longest_transfer_wait(settings: TenantSettings) -> float:
    """The longest wait for a transfer's result of the SIP accounts the tenant dials
    through (each account's `transfer_wait`)."""
    return max(
        (a.transfer_wait for a in settings.accounts.values()),
        default=AccountSettings.transfer_wait,
    )


def lost_call_bound(settings: TenantSettings, bye_grace: float = 1.0) -> float:
    """Seconds after its INVITE that a call of an engine could still be going: it rings out
    (the longest ring timeout of the running campaigns), the transfer waits for its result
    (the longest wait of the accounts), the PBX gets its moment for the BYE, the stop's
    grace; a customer held for an operator waits the longest abandon tolerance first. A
    successor counts a lost engine's calls in flight that long, and does not dial their
    leads sooner."""
    ring = max(
        (c.ring_timeout for c in settings.campaigns), default=CampaignSettings(0).ring_timeout
    )
    hold = max(
        (c.abandon_tolerance for c in settings.campaigns),
        default=CampaignSettings(0).abandon_tolerance,
    )
    return ring + hold + longest_transfer_wait(settings) + bye_grace + END_GRACE


def pacing_mode(campaign: CampaignSettings) -> str:
    """The pacer's mode for the campaign's setting (engine/pacer.py; docs/pacing.md);
    anything unknown is paced progressively, which never abandons a customer (and so is
    preview, which no pacer decides: its pacer is never asked, `previewed`)."""
    return campaign.pacing_mode if campaign.pacing_mode in MODES else PacingMode.PROGRESSIVE


def previewed(campaign: CampaignSettings) -> bool:
    """Whether the campaign dials in preview (engine/preview.py): not paced, one lead per
    free operator, dialed when the operator says so."""
    return campaign.pacing_mode == PacingMode.PREVIEW


def _pacing(campaign: CampaignSettings) -> tuple:
    """The settings a campaign's pacer is made with: a change makes a new pacer."""
    return (
        campaign.pacing_mode,
        campaign.multiplier,
        campaign.max_calls_at_once,
        campaign.max_calls_per_second,
        campaign.abandon_rate_cap,
    )


def _ratio(campaign: CampaignSettings) -> float:
    """Calls a campaign starts per free operator: its multiplier in the multiplier mode, one
    in the others (the predictive pacer's own dialing ahead is its own to answer for)."""
    return campaign.multiplier if pacing_mode(campaign) == PacingMode.MULTIPLIER else 1.0


def default_wrap_up(settings: TenantSettings) -> float:
    """The wrap-up timeout for an operator whose customer's campaign set none (a transfer
    made before a restart of Redis): the longest of the running campaigns', none (0) if one
    of them waits for the console."""
    timeouts = [c.wrap_up_timeout for c in settings.campaigns]
    if not timeouts:
        return CampaignSettings(0).wrap_up_timeout
    return 0.0 if 0 in timeouts else max(timeouts)


@dataclass(frozen=True)
class LateTransfer:
    """A transfer written as timed out whose result came late (engine/sip/call.py
    `LateResult`), to be written over its attempt once that is written (`Store.finish`)."""

    lead: Claimed
    campaign: CampaignSettings
    operator: int | None
    late: LateResult


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
        local_host: str = "",
        sip_ports: PortRange | None = None,
        public_addresses: PublicAddresses = nat.NONE_SET,
        timers: Timers = DEFAULT_TIMERS,
        heartbeat_ttl: float = Presence.DEFAULT_HEARTBEAT_TTL,
        register_backoff: float = 30.0,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        bye_grace: float = 1.0,
        idle_poll: float = IDLE_POLL,
        metrics: Tally | None = None,
        target_allowed: Callable[[str], bool] | None = None,
        locator: Locator | None = None,
    ):
        self.tenant_id = tenant_id
        self.log = logging.LoggerAdapter(log, {"tenant_id": tenant_id, "engine": engine_id})
        self.store = store
        self.redis = redis
        self.keys = TenantKeys(prefix, tenant_id)
        self.presence = Presence(redis, self.keys, heartbeat_ttl)
        self.engine_id = engine_id
        self.database = database  # awaitable runner of store calls in the database thread
        #: Where the user agents' sockets bind ("": any address of the PBX's family), the
        #: ports they take, the deployment's public addresses (engine/sip/nat.py).
        self.local_host = local_host
        self.sip_ports = sip_ports
        self.public_addresses = public_addresses
        self.timers = timers
        self.register_backoff = register_backoff
        #: Seconds between two OPTIONS to each PBX (engine/sip/keepalive.py).
        self.keepalive_interval = keepalive_interval
        self.bye_grace = bye_grace
        self.idle_poll = idle_poll
        #: Whether the deployment lets the engine send to this address (the PBX's, or the
        #: outbound proxy's, as resolved now); None: anywhere.
        self.target_allowed = target_allowed
        #: Finds the PBXes in DNS, with one cache for all the host's engines (None: each
        #: user agent its own).
        self.locator = locator
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
        #: A user agent per SIP account that a running campaign dials through.
        self.uas: dict[int, UserAgent] = {}
        #: Why an account has no user agent ("pbx_unreachable", detail); tried again after
        #: `ua_retry_at` (monotonic).
        self.ua_trouble: dict[int, tuple[str, str]] = {}
        self.ua_retry_at = 0.0
        #: Each campaign's pacer, its own learned rates and measured abandon rate.
        self.pacers: dict[int, Pacer] = {}
        #: The accounts whose dial format does not render: (code, detail).
        self.format_errors: dict[int, tuple[str, str]] = {}
        self.calls: set[asyncio.Task] = set()
        self.done: list[Finished] = []
        #: Late transfer results to write once their attempts are (`_write_late`).
        self.late: list[LateTransfer] = []
        self.wakened = asyncio.Event()
        self.stopping = False
        self.reload = True
        #: Per SIP account: calls in a row the PBX did not answer, REFERs it refused.
        self.pbx_silent: dict[int, int] = {}
        #: Accounts whose PBX went silent, REGISTERed until it answers (`_recheck_pbx`).
        self.rechecking: set[int] = set()
        self.refer_refused: dict[int, int] = {}
        self.epoch: int | None = None  # the fencing token, from Store.start_engine
        self.fenced = False  # a newer engine runs the tenant: write nothing more
        #: Operators taken by this engine's calls, until the transfer's end.
        self.taken: set[int] = set()
        #: The answered customers held for an operator, each by the event that wakes its
        #: call to try again (an operator went free, the engine stops), the first held first.
        self.holding: dict[asyncio.Event, None] = {}
        #: When (monotonic) each call a lost engine left may be over at the latest.
        self.inherited: list[float] = []
        self.state: dict = {}
        self.window_at = 0.0
        #: Each running campaign's calling window, recomputed once a minute.
        self.windows: dict[int, Window] = {}
        self.sweep_at = 0.0
        self.idle_at = 0.0
        self.idle_reason: tuple[str, str] = ("", "")
        #: Why each running campaign is not dialing now: (code, detail).
        self.campaign_reasons: dict[int, tuple[str, str]] = {}
        #: What the store last said of campaigns short of leads (`Store.idle_reasons`).
        self.store_reasons: dict[int, str] = {}
        self._ua_generation: list[UserAgent] = []
        self._recheck: asyncio.Future | None = None
        self.metrics = metrics or Tally()  # the host's, which publishes them (engine/metrics.py)
        self._sip_counted: dict[int, tuple[int, int, int]] = {}  # user agent -> counts published
        #: Operators handed a customer: when (wall clock), when their wrap-up began once
        #: seen, and the customer's campaign, to learn its handle and wrap-up times.
        self.handling: dict[int, tuple[float, float | None, int]] = {}
        #: When (monotonic) each campaign's measured abandon rate is read again.
        self.abandon_read_at: dict[int, float] = {}
        #: Preview dialing (engine/preview.py): the leads shown to operators and not dialed
        #: yet, by operator; the leads to put back, written with the attempts.
        self.previews: dict[int, Preview] = {}
        self.put_backs: list[PutBack] = []

    # --- control from the host --------------------------------------------------------------

    def wake(self, reason: str = "") -> None:
        self.claim_at = 0.0  # new leads, free operators, a campaign run again, ...: look now
        self.campaign_idle.clear()
        if reason in ("settings", "operators", "campaigns"):
            self.reload = True
        self.wakened.set()
        self._operator_freed()  # the console's presence changes come this way

    def _operator_freed(self) -> None:
        """An operator may have gone free (or the engine stops): every held customer's call
        tries to take one again."""
        for nudge in self.holding:
            nudge.set()

    def stop(self, why: str = "") -> None:
        """Start no new call and end the calls in flight (CANCEL what rings, BYE what is
        answered and not handed over): run() returns within about END_GRACE."""
        if not self.stopping and why:
            self.log.info("tenant %s: engine %s stops: %s", self.tenant_id, self.epoch, why)
        self.stopping = True
        for ua in self._ua_generation:
            ua.end_calls(END_GRACE)
        self.wakened.set()
        self._operator_freed()  # a held customer is let go

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
            while not (self.stopping and not self.calls and not self.previews):
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
            await self._drop_previews()
            await self._flush()
        finally:
            for task in list(self.calls):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flush()
            # All at once: each may wait for its PBX to answer the unregister (engine/sip/ua.py),
            # and the host gives a stopping engine only END_WAIT.
            closing, self._ua_generation = self._ua_generation, []
            await asyncio.gather(
                *(self._close_user_agent(ua) for ua in closing), return_exceptions=True
            )
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
                elif state.state == PREVIEWING:  # a lead never dialed: Store.recover's
                    taken[operator] = 0
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
                    await self.presence.transferred(operator, True, 0, default_wrap_up(settings))
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
        """(Re)load the tenant's settings: a pacer for each running campaign (a new one when
        its pacing changed), a user agent for each SIP account they dial through (a new one
        when the account changed)."""
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
        for campaign in settings.campaigns:
            before = previous.campaign(campaign.campaign_id) if previous else None
            if (
                campaign.campaign_id not in self.pacers
                or before is None
                or (_pacing(before) != _pacing(campaign))
            ):
                self.pacers[campaign.campaign_id] = Pacer(
                    pacing_mode(campaign),
                    campaign.multiplier,
                    campaign.max_calls_at_once,
                    float(campaign.max_calls_per_second),
                    time.monotonic(),
                    campaign.abandon_rate_cap,
                )
                self.abandon_read_at.pop(campaign.campaign_id, None)
            elif before.abandon_rate_window_days != campaign.abandon_rate_window_days:
                self.abandon_read_at.pop(campaign.campaign_id, None)
        self.window_at = 0.0
        for account_id in list(self.uas):  # no running campaign dials through it now
            if account_id not in settings.accounts:
                del self.uas[account_id]  # closed once its calls end
        for account_id, account in settings.accounts.items():
            before_account = previous.accounts.get(account_id) if previous else None
            if (
                account_id not in self.uas
                or before_account is None
                or before_account.account != account.account
            ):
                await self._new_user_agent(account)
        self.format_errors = {
            account_id: error
            for account_id, account in settings.accounts.items()
            if (error := self._format_error(account))
        }
        return True

    def _format_error(self, account: AccountSettings) -> tuple[str, str] | None:
        """("dial_format_wrong", why) when the account's dial format cannot make a URI."""
        ua = self.uas.get(account.account_id)
        try:
            render_dial_uri(
                account.dial_format,
                number="15550100",
                host=account.account.host,
                port=account.account.port,
                server=nat.bracket(ua.contact_host) if ua else "dialer",
            )
        except FormatError as error:
            return "dial_format_wrong", error.message
        return None

    async def _new_user_agent(self, account: AccountSettings) -> None:
        # A name that now leads into a private network is not sent to: the user agent checks
        # every address DNS gives it, at the start and whenever it asks again.
        ua = UserAgent(
            account.account,
            local_host=self.local_host,
            ports=self.sip_ports,
            public=self.public_addresses,
            timers=self.timers,
            target_allowed=self.target_allowed,
            locator=self.locator,
        )
        try:
            await ua.start()
        except OSError as error:  # the PBX's name does not resolve, no route...
            self.log.warning(
                "tenant %s: cannot reach the PBX of SIP account %s: %s",
                self.tenant_id,
                account.account_id,
                error,
            )
            self.uas.pop(account.account_id, None)
            # Every port of the deployment's SIP range taken is this machine's trouble, not
            # the PBX's (engine/sip/nat.py).
            code = "no_sip_port" if isinstance(error, nat.PortsTaken) else "pbx_unreachable"
            self.ua_trouble[account.account_id] = (code, str(error))
            self.ua_retry_at = time.monotonic() + 1.0  # try again in a second
            return
        self.ua_trouble.pop(account.account_id, None)
        self.pbx_silent[account.account_id] = 0
        ua.keep_registered(max_backoff=self.register_backoff)
        ua.keep_alive(
            self.keepalive_interval, on_silent=lambda: self._pbx_went_silent(ua, account.account_id)
        )
        old = self.uas.get(account.account_id)
        self.uas[account.account_id] = ua
        self._ua_generation.append(ua)
        if old is not None and not any(getattr(t, "ua", None) is old for t in self.calls):
            self._ua_generation.remove(old)
            await self._close_user_agent(old)

    async def _tick(self) -> None:
        now = time.monotonic()
        settings = self.settings
        if settings is None:
            return
        if self.ua_trouble and now >= self.ua_retry_at:
            self.reload = True  # reach the PBX again
        if now >= self.sweep_at:
            self.sweep_at = now + 1.0
            changed = await self.presence.sweep(default_wrap_up(settings))
            for operator, state in zip(changed[::2], changed[1::2], strict=True):
                if (state.decode() if isinstance(state, bytes) else state) == FREE:
                    self._operator_freed()  # past the wrap-up timeout
                if (state.decode() if isinstance(state, bytes) else state) == OFF_LINE:
                    # the console went quiet: told like the failed-transfer limit (reports)
                    gone = event("operator_off_line", operator_id=int(operator), reason="heartbeat")
                    await self._tell(int(operator), gone)
            await self._release_stale_transfers()
            await self._close_idle_user_agents()
        await self._watch_previews()
        reason, detail = await self._start_calls(settings, now)
        registration, registration_detail = self._registration()
        refused = any(n >= REFER_REFUSED_LIMIT for n in self.refer_refused.values())
        await self._publish_state(
            {
                "state": "stopping" if self.stopping else ("dialing" if not reason else "waiting"),
                "reason": reason,
                "detail": detail,
                "warning": "pbx_refuses_refer" if refused else "",
                "in_flight": self.in_flight,
                "registration": registration,
                "registration_detail": registration_detail,
                "campaigns": {
                    str(campaign): list(why) for campaign, why in self.campaign_reasons.items()
                },
                "accounts": self._accounts_state(),
                "engine": self.engine_id,
            }
        )

    def _accounts_state(self) -> dict[str, dict]:
        """Each SIP account's registration and keep-alive (the SIP page shows them)."""
        accounts = {
            str(account_id): {
                "registration": ua.registration.state,
                "detail": ua.registration.detail,
                **ua.keepalive.as_dict(),
            }
            for account_id, ua in self.uas.items()
        }
        for account_id, (_code, detail) in self.ua_trouble.items():
            accounts[str(account_id)] = {"registration": "none", "detail": detail}
        return accounts

    def _registration(self) -> tuple[str, str]:
        """The registration of the SIP accounts, the worst first: failed, registering (or
        unreachable: "none"), registered."""
        states = [(ua.registration.state, ua.registration.detail) for ua in self.uas.values()]
        for wanted in ("failed", "registering"):
            for state, detail in states:
                if state == wanted:
                    return state, detail
        if self.ua_trouble or not states:
            return "none", ""
        return states[0]

    async def _release_stale_transfers(self) -> None:
        """Free operators left `transferring` by no call of ours for longer than a transfer
        may take: an engine that stopped between taking them and the transfer's result."""
        assert self.settings is not None  # loaded first
        stale = time.time() - longest_transfer_wait(self.settings) - self.bye_grace
        for operator, state in decode_all(await self.presence.states()).items():
            if state.state == TRANSFERRING and operator not in self.taken and state.since < stale:
                self.log.warning(
                    "tenant %s: operator %s freed: left transferring", self.tenant_id, operator
                )
                await self.presence.release(operator)
                self._operator_freed()

    def _blocked(self, campaign: CampaignSettings, today: datetime) -> tuple[str, str]:
        """Why this running campaign cannot dial at all now, as (code, detail), or ("", "")."""
        if campaign.account_id is None:
            return "no_sip_account", ""
        settings = self.settings
        assert settings is not None  # loaded first
        if code := calendar_reason(campaign, settings.time_zone, today):
            return code, ""
        ua = self.uas.get(campaign.account_id)
        if ua is None:
            return self.ua_trouble.get(campaign.account_id, ("registering", ""))
        registration = ua.registration
        if registration.state != "registered":
            self.pbx_silent[campaign.account_id] = 0
            if campaign.account_id in self.rechecking:
                return "pbx_silent", ""
            if registration.state == "failed":
                return "registration_failed", registration.detail
            return "registering", ""
        if self.pbx_silent.get(campaign.account_id, 0) >= PBX_SILENCE_LIMIT:
            return "pbx_silent", ""
        return self.format_errors.get(campaign.account_id, ("", ""))

    async def _start_calls(self, settings: TenantSettings, now: float) -> tuple[str, str]:
        """Start the calls the campaigns' pacers allow; returns why the tenant is not
        dialing, as a reason code (REASONS) and a detail from the PBX or the format; ("", "")
        while dialing. Why each campaign is not dialing goes to `campaign_reasons`."""
        if self.stopping:
            return "stopping", ""
        today = datetime.now(UTC)
        blocked = {c.campaign_id: self._blocked(c, today) for c in settings.campaigns}
        reasons = {c: why for c, why in blocked.items() if why[0]}
        ready = [c for c in settings.campaigns if not blocked[c.campaign_id][0]]
        if not ready:
            self.campaign_reasons = reasons
            if settings.campaigns:  # the first one's, the default campaign's when it runs
                return reasons[settings.campaigns[0].campaign_id]
            return await self._idle(settings, now)
        # The operators read once a tick: who is free (the longest first), and who is on line.
        free = [int(op) for op in await self.presence.free_operators()]
        if self.workers is not None:  # only the operators of a running campaign count
            free = [op for op in free if op in self.workers]
        learning = any(pacing_mode(c) in LEARNING_MODES for c in ready)
        on_line: dict[int, OperatorState] = {}
        if learning:  # they count the busy operators too
            on_line = self._learn_handling(decode_all(await self.presence.states()), now)
            if not on_line:
                self.campaign_reasons = reasons
                return "no_operator_on_line", ""
        elif not free:
            self.campaign_reasons = reasons
            return (
                "no_free_operator" if await self.presence.states() else "no_operator_on_line"
            ), ""
        if now < self.claim_at:
            return self.idle_reason
        if self.reload:  # the settings changed while this tick waited: claim with the new ones
            return self.idle_reason
        if now >= self.window_at:  # the calling windows move slowly: once a minute
            self.window_at = now + 60.0
            self.windows = {
                c.campaign_id: calling_window(c, settings.time_zone, today)
                for c in settings.campaigns
            }
        claimed, asked, short = await self._claim(settings, ready, free, on_line, now)
        if self.stopping:  # stopped while the claim ran: these are not dialed
            stamp = time.time()
            for lead in claimed:
                campaign = settings.campaign(lead.campaign_id) or ready[0]
                if previewed(campaign):  # not shown yet: back as it was
                    self.put_backs.append(PutBack(lead.attempt_id, lead.lead_id))
                    continue
                attempt = CallRecord(
                    lead.dialed_uri,
                    outcome=Outcome.TECHNICAL_ERROR,
                    detail=Detail.ENGINE_STOPPED,
                    end_at=stamp,
                )
                status, next_at = lead_after(campaign, lead.attempts, attempt)
                self.done.append(
                    Finished(lead.attempt_id, lead.lead_id, None, attempt, status, next_at)
                )
            return "stopping", ""
        self.metrics.add(PACER_CALLS_ASKED, asked, tenant=self.tenant_id)
        shown = [lead for lead in claimed if lead.campaign_id in self._previewing_campaigns()]
        # a previewed lead's call is counted when its operator says Call (_dial_preview)
        self.metrics.add(CALLS_STARTED, len(claimed) - len(shown), tenant=self.tenant_id)
        for lead in claimed:
            campaign = settings.campaign(lead.campaign_id)
            assert campaign is not None and campaign.account_id is not None  # it was ready
            if previewed(campaign):
                await self._offer(campaign, lead)
                continue
            ua = self.uas[campaign.account_id]
            account = settings.accounts[campaign.account_id]
            task = asyncio.ensure_future(self._call(ua, account, campaign, lead))
            task.ua = ua  # type: ignore[attr-defined]  # which user agent the call is on
            task.campaign_id = lead.campaign_id  # type: ignore[attr-defined]
            self.calls.add(task)
            task.add_done_callback(self._call_done)
        if short and now >= self.idle_at:  # why they found too few leads: once a second
            self.idle_at = now + 1.0
            found = await self.database(self.store.idle_reasons, settings, short)
            self.store_reasons.update(found)
        dialing = {lead.campaign_id for lead in claimed}
        for campaign in ready:
            campaign_id = campaign.campaign_id
            if campaign_id in dialing:
                continue
            if campaign_id in short or self.campaign_idle.get(campaign_id, 0.0) > now:
                code = self.store_reasons.get(campaign_id, "no_due_leads")
            else:  # its pacer wanted no call: its operators are busy
                code = "no_free_operator"
            reasons[campaign_id] = (code, "")
        self.campaign_reasons = reasons
        if claimed:
            return "", ""
        if asked == 0:
            return ("no_free_operator", "") if not free else ("", "")
        self.claim_at = now + self.idle_poll
        codes = [code for c, code in self.store_reasons.items() if c in short]
        if "outside_calling_hours" in codes:
            self.idle_reason = ("outside_calling_hours", "")
        else:  # nothing due in its running campaigns: the tenant's own reason
            self.idle_reason = (self.store_reasons.get(0, "no_due_leads"), "")
        return self.idle_reason

    async def _idle(self, settings: TenantSettings, now: float) -> tuple[str, str]:
        """No campaign runs: nothing is due, or only in paused campaigns (asked of the store
        at most once a second)."""
        if now >= self.idle_at:
            self.idle_at = now + 1.0
            self.store_reasons = await self.database(self.store.idle_reasons, settings, [])
            self.idle_reason = (self.store_reasons.get(0, "no_due_leads"), "")
        return self.idle_reason

    async def _claim(
        self,
        settings: TenantSettings,
        ready: list[CampaignSettings],
        free: list[int],
        on_line: dict[int, OperatorState],
        now: float,
    ) -> tuple[list[Claimed], int, list[int]]:
        """Ask each ready campaign's pacer for its calls, and claim them in one transaction.
        The free operators are divided among the campaigns first (engine/campaigns.py), and
        each pacer counts its own part and its own calls in flight; a learning pacer also
        its part of the operators on line. What campaigns short of leads leave goes to the
        others, each asked again with every free operator who works it. Returns the leads
        claimed, how many calls the pacers asked for, and the campaigns short of leads (not
        divided to for `idle_poll`)."""
        shares = [
            Share(c.campaign_id, c.weights, now >= self.campaign_idle.get(c.campaign_id, 0.0))
            for c in ready
        ]
        flying: dict[int, int] = {}
        for task in self.calls:
            campaign_id = getattr(task, "campaign_id", 0)
            flying[campaign_id] = flying.get(campaign_id, 0) + 1
        if self.inherited:  # a lost engine's calls: counted against the first campaign
            first = ready[0].campaign_id
            flying[first] = flying.get(first, 0) + len(self.inherited)
        # The free operators its ringing calls will want stay each campaign's (a campaign
        # dialing at a multiplier wants one for so many calls), the rest are divided.
        pool, kept = reserve(
            free,
            shares,
            {
                c.campaign_id: math.ceil(flying.get(c.campaign_id, 0) / max(1.0, _ratio(c)))
                for c in ready
                if not previewed(c)  # its calls have their operators already
            },
        )
        parts: dict[int, list[int]] = (
            {ready[0].campaign_id: pool}
            if len(ready) == 1
            else divide(pool, shares, self.campaign_load.now(now))
        )
        busy: dict[int, float] = {}
        wrapping: dict[int, float] = {}
        if on_line:
            pool = list(on_line)
            busy = proportions(pool, shares)
            wrapping = proportions([op for op, s in on_line.items() if s.state == WRAP_UP], shares)
        asked: dict[int, int] = {}
        for campaign in ready:
            campaign_id = campaign.campaign_id
            if previewed(campaign):  # a lead for each of its free operators, none paced
                shown = sum(1 for p in self.previews.values() if p.lead.campaign_id == campaign_id)
                room = campaign.max_calls_at_once - flying.get(campaign_id, 0) - shown
                count = min(len(parts.get(campaign_id, ())), max(0, room))
                if count > 0:
                    asked[campaign_id] = count
                continue
            learning = pacing_mode(campaign) in LEARNING_MODES
            if learning:
                await self._read_abandon_rate(campaign, now)
            count = self.pacers[campaign_id].calls_to_start(
                len(parts.get(campaign_id, ())) + kept.get(campaign_id, 0),
                flying.get(campaign_id, 0),
                now,
                round(busy.get(campaign_id, 0.0)) if learning else -1,
                round(wrapping.get(campaign_id, 0.0)) if learning else 0,
            )
            if count > 0:
                asked[campaign_id] = count
        claimed: list[Claimed] = []
        got: dict[int, int] = {}

        async def take(wanted: dict[int, int]) -> None:
            leads = await self._claim_leads(settings, wanted, free)
            claimed.extend(leads)
            for lead in leads:
                got[lead.campaign_id] = got.get(lead.campaign_id, 0) + 1

        if asked:
            await take(asked)
        taken = dict(asked)  # the pacers' tokens each campaign holds
        left = sum(asked.values()) - len(claimed)
        if left > 0:  # what campaigns short of leads left goes to those that are not
            more: dict[int, int] = {}
            for campaign in ready:
                campaign_id = campaign.campaign_id
                if got.get(campaign_id, 0) < asked.get(campaign_id, 0):
                    continue  # short itself
                if self.campaign_idle.get(campaign_id, 0.0) > now or left <= 0:
                    continue
                if previewed(campaign):  # its free operators were all asked for
                    continue
                share = next(s for s in shares if s.campaign_id == campaign_id)
                learning = pacing_mode(campaign) in LEARNING_MODES
                extra = self.pacers[campaign_id].calls_to_start(
                    sum(1 for op in pool if share.weight(op) > 0) + kept.get(campaign_id, 0),
                    flying.get(campaign_id, 0) + got.get(campaign_id, 0),
                    now,
                    sum(1 for op in on_line if share.weight(op) > 0) if learning else -1,
                    0,
                )
                wanted = max(0, min(left, extra))
                self.pacers[campaign_id].give_back(extra - wanted, now)
                if wanted:
                    more[campaign_id] = wanted
                    taken[campaign_id] = taken.get(campaign_id, 0) + wanted
                    left -= wanted
            if more:
                await take(more)
        short = []
        for campaign_id, tokens in taken.items():
            calls = got.get(campaign_id, 0)
            running = settings.campaign(campaign_id)
            if running is None or not previewed(running):
                self.pacers[campaign_id].give_back(tokens - calls, now)  # leads not found
            self.campaign_load.started(campaign_id, calls)
            if calls < tokens:
                self.campaign_idle[campaign_id] = now + self.idle_poll
                short.append(campaign_id)
        return claimed, sum(asked.values()), short

    async def _claim_leads(
        self, settings: TenantSettings, wanted: dict[int, int], free: list[int]
    ) -> list[Claimed]:
        """Claim so many leads of each campaign (one transaction), their URIs made with
        their SIP accounts' dial formats; a personal callback only while its operator is
        one of the `free` ones (the store's `claim`)."""
        where: dict[int, dict[str, Any]] = {}
        for campaign_id in wanted:
            campaign = settings.campaign(campaign_id)
            assert campaign is not None and campaign.account_id is not None  # it was ready
            account = settings.accounts[campaign.account_id]
            where[campaign_id] = {
                "format": account.dial_format,
                "host": account.account.host,
                "port": account.account.port,
                "server": nat.bracket(self.uas[campaign.account_id].contact_host),
            }

        def dial_uri(campaign_id: int, phone: str) -> str:
            values = dict(where[campaign_id])
            return render_dial_uri(values.pop("format"), number=phone.lstrip("+"), **values)

        return await self.database(
            self.store.claim,
            settings,
            self.engine_id,
            self.epoch,
            wanted,
            {c: self.windows[c] for c in wanted if c in self.windows},
            dial_uri,
            free,
        )

    def _learn_handling(
        self, states: dict[int, OperatorState], now: float
    ) -> dict[int, OperatorState]:
        """For the pacing modes that learn: the handle time (and the wrap-up time, when seen)
        of each operator free again since their customer was handed over, told to the pacer
        of that customer's campaign. Returns the operators on line who work a running
        campaign."""
        for operator, (since, wrap_since, campaign_id) in list(self.handling.items()):
            state = states.get(operator)
            pacer = self.pacers.get(campaign_id)
            if state is None or state.state == FREE:  # finished the lead, or went off line
                freed = state.since if state is not None else time.time()
                wrap = max(0.0, freed - wrap_since) if wrap_since is not None else -1.0
                if pacer is not None:
                    pacer.handled(max(0.0, freed - since), now, wrap)
                del self.handling[operator]
            elif state.state == WRAP_UP and wrap_since is None:  # the talk is over
                self.handling[operator] = (since, state.since, campaign_id)
        if self.workers is not None:  # only the operators of a running campaign count
            return {op: state for op, state in states.items() if op in self.workers}
        return states

    async def _read_abandon_rate(self, campaign: CampaignSettings, now: float) -> None:
        """Every minute, a learning campaign's abandon rate measured over its regulatory
        window, from the database."""
        if now < self.abandon_read_at.get(campaign.campaign_id, 0.0):
            return
        self.abandon_read_at[campaign.campaign_id] = now + ABANDON_WINDOW_READ
        window = datetime.now(UTC) - timedelta(days=campaign.abandon_rate_window_days)
        answered, abandoned = await self.database(
            self.store.abandon_counts, self.tenant_id, window, campaign.campaign_id
        )
        self.pacers[campaign.campaign_id].set_window(answered, abandoned)

    def _observe(
        self, pacer: Pacer, campaign_id: int, attempt: CallRecord, operator: int | None
    ) -> None:
        """Tell the campaign's pacer how the attempt went (all modes; the learning ones use
        it)."""
        now = time.monotonic()
        if attempt.invite_at is not None:
            answered = attempt.answer_at is not None
            ended = attempt.answer_at if answered else attempt.end_at
            pacer.ringing_ended(answered, (ended or attempt.invite_at) - attempt.invite_at, now)
        if attempt.detail in ABANDONED:
            pacer.abandoned(now)
        if operator is not None and attempt.transfer_result in (
            TransferResult.SUCCEEDED,
            TransferResult.UNCONFIRMED,
        ):
            self.handling[operator] = (attempt.refer_at or time.time(), None, campaign_id)

    def _call_done(self, task: asyncio.Task) -> None:
        self.calls.discard(task)
        self.wakened.set()

    async def _close_idle_user_agents(self) -> None:
        for ua in list(self._ua_generation):
            if (
                ua not in self.uas.values()
                and not ua.late_transfers
                and not any(getattr(t, "ua", None) is ua for t in self.calls)
            ):
                self._ua_generation.remove(ua)
                await self._close_user_agent(ua)

    # --- one call ---------------------------------------------------------------------------

    async def _call(
        self,
        ua: UserAgent,
        account: AccountSettings,
        campaign: CampaignSettings,
        lead: Claimed,
        chosen: int | None = None,
    ) -> None:
        """One call; `chosen`: the operator who previewed the lead and is `transferring`
        already (preview dialing), the only one its customer goes to."""
        # Every record of this call's task names it (the user agent adds the SIP Call-ID).
        logs.bind(
            tenant_id=self.tenant_id,
            engine=self.engine_id,
            attempt_id=lead.attempt_id,
            lead_id=lead.lead_id,
        )
        operator: int | None = chosen
        #: The customer was held past the tolerance and sent to the campaign's fallback.
        fallback = False
        #: Wakes the call held for an operator: one went free, the customer hung up...
        nudge = asyncio.Event()
        hung_up = False
        where = {
            "host": account.account.host,
            "port": account.account.port,
            "server": nat.bracket(ua.contact_host),
        }
        account_id = account.account_id

        async def pick_operator():
            """A free operator's REFER target; nobody free: hold the customer up to the
            campaign's abandon tolerance for the first to go free (woken when one may have),
            then the fallback's target, or None (hung up)."""
            nonlocal fallback
            until = time.monotonic() + campaign.abandon_tolerance
            self.holding[nudge] = None
            try:
                while not self.stopping and not hung_up:
                    nudge.clear()  # an operator freed during the take wakes the wait at once
                    target, again = await take_operator()
                    left = until - time.monotonic()
                    if target is not None or not again or left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(left):
                            await nudge.wait()
                else:
                    return None
            finally:
                del self.holding[nudge]
            if target is not None or self.stopping or hung_up or not campaign.fallback:
                return target
            fallback = True  # abandoned: within the tolerance, to the campaign's fallback
            return (
                render_refer_uri(account.refer_format, extension=campaign.fallback, **where),
                render_refer_headers(account.refer_headers, extension=campaign.fallback, **where),
            )

        def customer_hung_up() -> None:
            nonlocal hung_up
            hung_up = True
            nudge.set()

        async def take_operator():
            """(target, whether to try again when an operator goes free)."""
            nonlocal operator
            try:
                taken = (
                    chosen
                    if chosen is not None
                    else await self.presence.take(
                        lead.lead_id,
                        lead.last_operator_id,
                        among=self.among.get(lead.campaign_id),
                    )
                )
            except RedisError as error:  # nobody can be taken: the customer is let go
                if fenced(error):
                    self._refused(error)
                self.log.warning("tenant %s: no operator taken: %s", self.tenant_id, error)
                return None, False
            if taken is None:
                return None, True
            operator = int(taken)
            self.taken.add(operator)
            extension = self.settings.operators.get(operator) if self.settings else None
            if extension is None:  # added since the last load
                fresh = await self.database(self.store.settings, self.tenant_id)
                extension = fresh.operators.get(operator) if fresh else None
            if extension is None:  # deactivated, or deleted: not a target
                await self.presence.go_off_line(operator)
                self.taken.discard(operator)
                operator = None
                return None, True
            uri = render_refer_uri(account.refer_format, extension=extension, **where)
            headers = render_refer_headers(account.refer_headers, extension=extension, **where)
            try:
                await self._screen_pop(operator, lead)
            except RedisError as error:  # the console asks for what it missed on reconnect
                self.log.warning("tenant %s: screen pop not sent: %s", self.tenant_id, error)
            return (uri, headers), False

        def late_result(late: LateResult) -> None:  # after the wait: corrects the attempt
            if fallback:  # abandoned whatever the fallback's transfer came to
                return
            self.late.append(LateTransfer(lead, campaign, operator, late))
            self.wakened.set()

        try:
            attempt = await ua.place_call(
                lead.dialed_uri,
                pick_operator,
                ring_timeout=campaign.ring_timeout,
                transfer_timeout=account.transfer_wait,
                bye_grace=self.bye_grace,
                on_late_result=late_result,
                on_hang_up=customer_hung_up,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("tenant %s: attempt %s failed", self.tenant_id, lead.attempt_id)
            attempt = CallRecord(
                lead.dialed_uri, outcome=Outcome.TECHNICAL_ERROR, end_at=time.time()
            )
        if attempt.detail == Detail.NO_RESPONSE:
            silent = self.pbx_silent[account_id] = self.pbx_silent.get(account_id, 0) + 1
            if silent == PBX_SILENCE_LIMIT:  # check the PBX before dialing again
                self._pbx_went_silent(ua, account_id)
        elif attempt.sip_code is not None:
            self.pbx_silent[account_id] = 0
        if attempt.detail == Detail.REFER_REFUSED:
            self.refer_refused[account_id] = self.refer_refused.get(account_id, 0) + 1
        elif attempt.transfer_result is not None:
            self.refer_refused[account_id] = 0
        if fallback:  # abandoned: handed to the fallback, or (its transfer failed) hung up
            handed = attempt.transfer_result in (
                TransferResult.SUCCEEDED,
                TransferResult.UNCONFIRMED,
            )
            attempt.outcome = Outcome.TECHNICAL_ERROR
            attempt.detail = Detail.SENT_TO_FALLBACK if handed else Detail.NO_FREE_OPERATOR
        if (pacer := self.pacers.get(lead.campaign_id)) is not None:
            self._observe(pacer, lead.campaign_id, attempt, operator)
        if operator is not None:
            try:
                await self._after_transfer(campaign, operator, lead, attempt)
            except RedisError as error:  # the console re-publishes presence when Redis is back
                if fenced(error):
                    self._refused(error)
                self.log.warning(
                    "tenant %s: operator %s not updated: %s", self.tenant_id, operator, error
                )
            finally:
                self.taken.discard(operator)
                self._operator_freed()  # free again, perhaps: a held customer may take them
        self.metrics.add(ATTEMPTS, outcome=attempt.outcome or "", detail=attempt.detail or "")
        log.debug(
            "attempt ended: %s %s, SIP %s, transfer %s",
            attempt.outcome,
            attempt.detail,
            attempt.sip_code,
            attempt.transfer_result,
            extra={"call_id": attempt.call_id, "operator_id": operator},
        )
        status, next_at = lead_after(campaign, lead.attempts, attempt)
        self.done.append(
            Finished(lead.attempt_id, lead.lead_id, operator, attempt, status, next_at)
        )

    def _pbx_went_silent(self, ua: UserAgent, account_id: int) -> None:
        """Calls in a row or an OPTIONS got no answer at all: no call through this account
        until the PBX answers a REGISTER again (a dead PBX must not burn leads)."""
        if account_id in self.rechecking or self.uas.get(account_id) is not ua:
            return  # checked already, or a user agent on its way out
        self.log.warning(
            "tenant %s: the PBX of SIP account %s does not answer; checking it",
            self.tenant_id,
            account_id,
        )
        ua.registration.state = "registering"
        self.rechecking.add(account_id)
        self._recheck = asyncio.ensure_future(self._recheck_pbx(ua, account_id))
        self.wakened.set()

    async def _recheck_pbx(self, ua: UserAgent, account_id: int) -> None:
        """REGISTER until the PBX answers again, then dial again."""
        backoff = 0.5
        try:
            while (await ua.register()).state != "registered":
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.register_backoff)
        finally:
            self.rechecking.discard(account_id)
        self.pbx_silent[account_id] = 0
        self.wakened.set()

    async def _after_transfer(
        self, campaign: CampaignSettings, operator: int, lead: Claimed, attempt: CallRecord
    ) -> None:
        if attempt.refer_at is None:  # taken, but the customer was gone before the REFER
            await self.presence.release(operator)
            return
        succeeded = attempt.transfer_result in (
            TransferResult.SUCCEEDED,
            TransferResult.UNCONFIRMED,
        )
        state = await self.presence.transferred(
            operator, succeeded, campaign.failed_transfers_limit, campaign.wrap_up_timeout
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

    # --- preview dialing (engine/preview.py) -----------------------------------------------

    def _previewing_campaigns(self) -> set[int]:
        settings = self.settings
        return {c.campaign_id for c in settings.campaigns if previewed(c)} if settings else set()

    async def _offer(self, campaign: CampaignSettings, lead: Claimed) -> None:
        """Show a claimed lead of a preview campaign to a free operator of the campaign (the
        one who served it before, if free); nobody free any more: it goes back at once."""
        try:
            taken = await self.presence.take(
                lead.lead_id,
                lead.last_operator_id,
                among=self.among.get(lead.campaign_id),
                state=PREVIEWING,
            )
        except RedisError as error:
            if fenced(error):
                self._refused(error)
            self.log.warning("tenant %s: no operator for a preview: %s", self.tenant_id, error)
            taken = None
        if taken is None:
            self.put_backs.append(PutBack(lead.attempt_id, lead.lead_id))
            return
        operator = int(taken)
        preview = Preview(lead, campaign, operator, dial_at(campaign, time.monotonic()))
        self.previews[operator] = preview
        await self._tell(
            operator,
            event(
                "preview",
                operator_id=operator,
                lead_id=lead.lead_id,
                attempt_id=lead.attempt_id,
                countdown=campaign.preview_countdown,
                at=time.time(),
            ),
        )

    async def _watch_previews(self) -> None:
        """Act on the previews: Call (or a countdown run out) dials the lead for its operator,
        Skip puts it back with the reason, an operator gone off line puts it back due now."""
        if not self.previews:
            return
        if self.stopping:
            await self._drop_previews()
            return
        raw = await self.redis.hgetall(self.keys.preview_choices)
        choices = choices_of(raw)
        states = decode_all(await self.presence.states())
        now = time.monotonic()
        for operator, preview in list(self.previews.items()):
            state = states.get(operator)
            lead_id = preview.lead.lead_id
            lead, choice, reason = choices.get(operator, (0, "", ""))
            if lead != lead_id:
                choice = ""  # a choice left for an earlier lead
            if state is None or state.state != PREVIEWING or state.lead_id != lead_id:
                del self.previews[operator]  # off line (or freed): nobody's choice
                self.put_backs.append(released(preview))
            elif choice == CALL or (
                not choice and preview.dial_at is not None and now >= preview.dial_at
            ):
                del self.previews[operator]
                await self._dial_preview(preview)
            elif choice:  # skipped
                del self.previews[operator]
                await self.presence.release(operator)
                self.put_backs.append(skipped(preview, reason))
                await self._tell(
                    operator,
                    event("preview_skipped", operator_id=operator, lead_id=lead_id, reason=reason),
                )
                self.log.info(
                    "tenant %s: operator %s skipped lead %s: %s",
                    self.tenant_id,
                    operator,
                    lead_id,
                    reason,
                )
        if raw:  # acted on, or left for a lead no longer shown
            await self.redis.hdel(self.keys.preview_choices, *raw)

    async def _dial_preview(self, preview: Preview) -> None:
        """The operator said Call: they are `transferring`, and the customer is dialed for
        them alone."""
        settings, operator, lead = self.settings, preview.operator, preview.lead
        campaign = (settings.campaign(lead.campaign_id) if settings else None) or preview.campaign
        account_id = campaign.account_id
        ua = self.uas.get(account_id) if account_id is not None else None
        if settings is None or ua is None or account_id not in settings.accounts:
            await self.presence.release(operator)  # the campaign stopped dialing meanwhile
            self.put_backs.append(released(preview))
            return
        if not await self.presence.dial(operator, lead.lead_id):  # off line just now
            self.put_backs.append(released(preview))
            return
        self.taken.add(operator)
        await self._tell(
            operator, event("preview_dialing", operator_id=operator, lead_id=lead.lead_id)
        )
        task = asyncio.ensure_future(
            self._call(ua, settings.accounts[account_id], campaign, lead, chosen=operator)
        )
        task.ua = ua  # type: ignore[attr-defined]
        task.campaign_id = lead.campaign_id  # type: ignore[attr-defined]
        self.calls.add(task)
        task.add_done_callback(self._call_done)
        self.metrics.add(CALLS_STARTED, 1, tenant=self.tenant_id)

    async def _drop_previews(self) -> None:
        """The engine stops: every lead shown and not dialed goes back due at once, and its
        operator is free again."""
        for operator, preview in list(self.previews.items()):
            del self.previews[operator]
            self.put_backs.append(released(preview))
            if not self.fenced:
                with contextlib.suppress(RedisError):
                    await self.presence.release(operator)

    async def _write_put_backs(self) -> None:
        if not self.put_backs:
            return
        batch, self.put_backs = self.put_backs, []
        if self.fenced:  # our successor closes these attempts (Store.recover)
            return
        try:
            await self.database(self.store.put_back, self.tenant_id, self.epoch, batch)
        except Refused as error:
            self._refused(error)
        except Exception:
            self.log.exception("tenant %s: leads not put back; will retry", self.tenant_id)
            self.put_backs[:0] = batch

    async def _tell(self, operator: int, payload: str) -> None:
        """An event for one operator's console (a capped stream it resumes from after a
        drop) and for the live wall (pub/sub)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.pops(operator), {"event": payload}, maxlen=100, approximate=True)
        pipe.publish(self.keys.events, payload)
        await pipe.execute()

    # --- writing ----------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Write the finished attempts, then the late transfer results over them."""
        await self._write_put_backs()
        await self._write_finished()
        if self.late and not self.done:
            await self._write_late()

    async def _write_late(self) -> None:
        """Late transfer results (`LateTransfer`), each after its attempt was written as
        timed out: a success corrects the attempt and its lead (`Store.correct_transfer`),
        the operator's console hears `transferred`, and the operator, if free, is busy with
        the customer; a failure changes nothing."""
        while self.late and not self.fenced:
            item = self.late.pop(0)
            late, lead, operator = item.late, item.lead, item.operator
            if late.result != TransferResult.SUCCEEDED:
                self.log.info(
                    "tenant %s: attempt %s: late transfer result %s %s: nothing changes",
                    self.tenant_id,
                    lead.attempt_id,
                    late.sip_code,
                    late.sip_reason,
                )
                continue
            try:
                corrected = await self.database(
                    self.store.correct_transfer,
                    self.tenant_id,
                    self.epoch,
                    lead.attempt_id,
                    late.result,
                    late.sip_code,
                    datetime.fromtimestamp(late.at, UTC),
                    late.sip_reason,
                )
            except Refused as error:
                self._refused(error)
                self.log.warning(
                    "tenant %s: attempt %s not corrected: %s",
                    self.tenant_id,
                    lead.attempt_id,
                    error,
                )
                return
            except Exception:
                self.log.exception(
                    "tenant %s: attempt %s not corrected; will retry",
                    self.tenant_id,
                    lead.attempt_id,
                )
                self.late.insert(0, item)
                return
            self.log.info(
                "tenant %s: attempt %s: the transfer succeeded after the wait (%s %s)",
                self.tenant_id,
                lead.attempt_id,
                late.sip_code,
                late.sip_reason,
            )
            if not corrected or operator is None:
                continue
            try:
                state = await self.presence.transferred_late(
                    operator, lead.lead_id, item.campaign.wrap_up_timeout
                )
                if (state.decode() if isinstance(state, bytes) else state) == BUSY:
                    self.handling[operator] = (late.at, None, lead.campaign_id)
                await self._tell(
                    operator,
                    event(
                        "transferred",
                        operator_id=operator,
                        lead_id=lead.lead_id,
                        attempt_id=lead.attempt_id,
                    ),
                )
            except RedisError as error:
                if fenced(error):
                    self._refused(error)
                self.log.warning(
                    "tenant %s: operator %s not updated: %s", self.tenant_id, operator, error
                )

    async def _write_finished(self) -> None:
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
