"""What the engine needs from the database: the `Store` contract and the values it carries.

The engine (engine/dialer.py) and the engine host (engine/host.py) reach the database only
through a `Store`; webapp/services/dialing.py implements it on the portal's tables. Every
method is one short transaction, run in the host's database thread (never on the event loop).

Fencing: `start_engine` hands a starting engine the tenant's next fencing token (`epoch`);
`claim`, `finish` and `correct_transfer` carry it and raise `Refused` once a newer engine of
the tenant started (`claim` also once dialing is off).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock
from typing import Protocol

from engine.outcomes import TransferResult
from engine.sip.ua import Account, CallRecord

#: Retry minutes per failed outcome when a test names none.
RETRY_MINUTES = {"no_answer": 90, "unavailable": 90, "busy": 5, "technical_error": 10}
ALL_DAY = (clock(0, 0), clock(0, 0))
EVERY_DAY = frozenset(range(1, 8))


@dataclass(frozen=True)
class AccountSettings:
    """A SIP account of the tenant: what one user agent registers and dials with, and the
    formats written for it."""

    account_id: int
    account: Account
    dial_format: str = "sip:{number}@{host}"
    refer_format: str = "sip:{extension}@{host}"
    refer_headers: str = ""
    #: Seconds to wait after the REFER for the transfer's result (the PBX's final NOTIFY).
    transfer_wait: float = 30.0


@dataclass(frozen=True)
class CampaignSettings:
    """A running campaign of the tenant and its dialing rules: who works it (operator id ->
    weight; None: every operator, weight 1) for the division of operators
    (engine/campaigns.py), its SIP account, its pacing, retries and calendar."""

    campaign_id: int
    weights: dict[int, int] | None = None
    account_id: int | None = None  # none: it does not dial ("no_sip_account")
    ring_timeout: float = 30.0
    retry_minutes: dict[str, int] = field(default_factory=lambda: dict(RETRY_MINUTES))
    max_attempts: int = 5
    #: Calling hours and ISO weekdays in the customer's zone; start == end: all day.
    calling_hours: tuple[clock, clock] = ALL_DAY
    weekdays: frozenset[int] = EVERY_DAY
    #: The first and last day it dials, in the tenant's zone.
    start_date: date | None = None
    end_date: date | None = None
    pacing_mode: str = "progressive"
    multiplier: float = 1.0
    max_calls_at_once: int = 30
    max_calls_per_second: int = 10
    #: Predictive pacing keeps the campaign's abandon rate (abandoned / answered, in percent)
    #: over the regulatory window (days: 1 or 30) under this cap.
    abandon_rate_cap: float = 3.0
    abandon_rate_window_days: int = 30
    #: Seconds an answered customer is held for an operator about to be free before the
    #: call counts as abandoned (0: let go at once).
    abandon_tolerance: float = 2.0
    #: Where an abandoned customer is sent by REFER (an extension or number at the PBX: an
    #: announcement, a voicemail, an overflow queue); "": hung up.
    fallback: str = ""
    wrap_up_timeout: float = 600.0
    failed_transfers_limit: int = 3
    #: Preview dialing: seconds after which a previewed lead is dialed by itself (0: never).
    preview_countdown: float = 0.0
    #: After its due callbacks, which of its due leads first: "new_first", "retries_first"
    #: or "priority" (the lead's priority, new or retried alike).
    lead_order: str = "new_first"
    #: Minutes a personal callback waits for its operator past its time before anyone may
    #: take it.
    callback_grace_minutes: int = 30


@dataclass(frozen=True)
class TenantSettings:
    """A snapshot of a tenant's settings, reloaded when the portal says they changed."""

    tenant_id: int
    time_zone: str = "UTC"
    dialing_enabled: bool = True
    #: Active operators: id -> extension.
    operators: dict[int, str] = field(default_factory=dict)
    #: The tenant's SIP accounts that running campaigns dial through, by id.
    accounts: dict[int, AccountSettings] = field(default_factory=dict)
    #: The running campaigns, the default first.
    campaigns: tuple[CampaignSettings, ...] = ()

    def campaign(self, campaign_id: int) -> CampaignSettings | None:
        for campaign in self.campaigns:
            if campaign.campaign_id == campaign_id:
                return campaign
        return None


@dataclass(frozen=True)
class Claimed:
    """A lead claimed for one attempt: the lead is `dialing`, the attempt is open."""

    lead_id: int
    attempt_id: int
    phone: str
    dialed_uri: str
    attempts: int  # attempts made, this one included
    last_operator_id: int | None  # offered first at the answer: a personal callback's operator
    campaign_id: int
    callback: bool = False  # a callback promised to the customer


@dataclass(frozen=True)
class Finished:
    """An attempt's CDR and what becomes of its lead."""

    attempt_id: int
    lead_id: int
    operator_id: int | None
    attempt: CallRecord
    lead_status: str
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class PutBack:
    """Preview dialing: a claimed lead that was never dialed (skipped by its operator, or
    its operator went off line). Its attempt is deleted (a lead not dialed has no CDR and
    uses none of its attempts) and the lead is due again at `next_attempt_at` (None: now);
    a skip records its reason on the lead."""

    attempt_id: int
    lead_id: int
    next_attempt_at: datetime | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class Lost:
    """An attempt that a lost engine left open, closed by its successor (`Store.recover`)."""

    attempt_id: int
    lead_id: int
    invite_at: datetime
    handed: bool  # its customer was being handed to an operator: reached, not retried


class Refused(Exception):
    """The database refused an engine's claim or write: `reason` is "fenced" (a newer engine
    runs the tenant) or "dialing_off"; the engine stops."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class Window:
    """Where it is calling time now for a campaign: every zone (`zones` None), or only these
    zones, and whether the tenant's own zone (for leads without one) is inside its hours and
    weekdays."""

    tenant_zone_open: bool
    zones: tuple[str, ...] | None


class Store(Protocol):
    """Every database call of the engine host and its engines."""

    def tenants_to_dial(self) -> list[int]:
        """The tenants that want an engine (dialing on): the host reads it every lease tick."""
        ...

    def start_engine(self, tenant_id: int) -> int:
        """Take the tenant's next fencing token: the new engine's `epoch`."""
        ...

    def settings(self, tenant_id: int) -> TenantSettings | None:
        """The tenant's settings now; None when the tenant is gone."""
        ...

    def recover(
        self,
        tenant_id: int,
        engine: str,
        epoch: int,
        settings: TenantSettings,
        handed: dict[int, int],
        bound: float,
    ) -> list[Lost]:
        """Close the attempts left open by the tenant's engines other than `engine` (lost
        ones) and put their leads back, no sooner than `bound` seconds from now; a lead in
        `handed` ({lead: operator} the lost engine was handing it to) is `reached`."""
        ...

    def claim(
        self,
        settings: TenantSettings,
        engine: str,
        epoch: int,
        wanted: Mapping[int, int],
        windows: Mapping[int, Window],
        dial_uri: Callable[[int, str], str],
        free: Collection[int] = (),
    ) -> list[Claimed]:
        """Up to so many due leads of each running campaign of `wanted` ({campaign: count})
        inside its calling window, marked `dialing`, with their attempts opened
        (`dial_uri(campaign, phone)` makes the URI dialed). Due callbacks come first, and a
        personal callback only while its operator is among the `free` ones (until its
        campaign's grace period is over, or its operator is no longer active)."""
        ...

    def finish(self, tenant_id: int, epoch: int, finished: list[Finished]) -> int:
        """Write the attempts' CDRs and their leads' next steps; how many were written."""
        ...

    def put_back(self, tenant_id: int, epoch: int, leads: list[PutBack]) -> int:
        """Put back claimed leads that were not dialed (`PutBack`); how many were still
        ours to put back."""
        ...

    def correct_transfer(
        self,
        tenant_id: int,
        epoch: int,
        attempt_id: int,
        result: TransferResult,
        sip_code: int,
        at: datetime,
        sip_reason: str = "",
    ) -> bool:
        """A written attempt whose transfer timed out got its result late (the final NOTIFY
        after the wait): record it; when it succeeded, the attempt is `answered` and its lead
        `reached` (unless the lead moved on since: a newer attempt, or the portal changed
        it). False when the attempt is not one that timed out (nothing written)."""
        ...

    def idle_reasons(self, settings: TenantSettings, campaigns: list[int]) -> dict[int, str]:
        """Why claims of these campaigns found nothing: {campaign: a code of
        engine.dialer.REASONS}."""
        ...

    def abandon_counts(
        self, tenant_id: int, since: datetime, campaign_id: int | None = None
    ) -> tuple[int, int]:
        """(picked up, abandoned): attempts (of the campaign, or all) started since `since`
        whose customer picked up, and of those, the ones that found no free operator."""
        ...
