"""What the engine needs from the database: the `Store` contract and the values it carries.

The engine (engine/dialer.py) and the engine host (engine/host.py) reach the database only
through a `Store`; webapp/services/dialing.py implements it on the portal's tables. Every
method is one short transaction, run in the host's database thread (never on the event loop).

Fencing: `start_engine` hands a starting engine the tenant's next fencing token (`epoch`);
`claim` and `finish` carry it and raise `Refused` once a newer engine of the tenant started,
or once dialing is off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as clock
from typing import Protocol

from engine.sip.ua import Account, CallRecord


@dataclass(frozen=True)
class CampaignSettings:
    """A running campaign of the tenant: who works it (operator id -> weight; None: every
    operator, weight 1), for the division of operators (engine/campaigns.py)."""

    campaign_id: int
    weights: dict[int, int] | None = None


@dataclass(frozen=True)
class TenantSettings:
    """A snapshot of a tenant's settings, reloaded when the portal says they changed."""

    tenant_id: int
    account: Account
    dial_format: str
    refer_format: str
    refer_headers: str
    ring_timeout: float
    retry_minutes: dict[str, int]
    max_attempts: int
    calling_hours: tuple[clock, clock]
    time_zone: str
    pacing_mode: str
    multiplier: float
    max_calls_at_once: int
    max_calls_per_second: int
    wrap_up_timeout: float
    failed_transfers_limit: int
    dialing_enabled: bool
    #: Active operators: id -> extension.
    operators: dict[int, str] = field(default_factory=dict)
    #: Predictive pacing keeps the abandon rate (abandoned / answered, in percent) over the
    #: regulatory window (days: 1 or 30) under this cap.
    abandon_rate_cap: float = 3.0
    abandon_rate_window_days: int = 30
    #: The running campaigns, the default first.
    campaigns: tuple[CampaignSettings, ...] = ()


@dataclass(frozen=True)
class Claimed:
    """A lead claimed for one attempt: the lead is `dialing`, the attempt is open."""

    lead_id: int
    attempt_id: int
    phone: str
    dialed_uri: str
    attempts: int  # attempts made, this one included
    last_operator_id: int | None
    campaign_id: int = 0


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
    """Where it is calling time now: every zone (`zones` None), or only these zones, and
    whether the tenant's own zone (for leads without one) is inside its hours."""

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
        count: int,
        window: Window,
        dial_uri: Callable[[str], str],
        campaigns: Mapping[int, int] | None = None,
    ) -> list[Claimed]:
        """Up to `count` due leads of running campaigns (or up to so many of each of
        `campaigns`, {campaign: count}) inside the calling `window`, marked `dialing`, with
        their attempts opened (`dial_uri` makes the URI dialed from the phone number)."""
        ...

    def finish(self, tenant_id: int, epoch: int, finished: list[Finished]) -> int:
        """Write the attempts' CDRs and their leads' next steps; how many were written."""
        ...

    def idle_reason(self, settings: TenantSettings) -> str:
        """Why a claim found nothing: a code of engine.dialer.REASONS."""
        ...

    def abandon_counts(self, tenant_id: int, since: datetime) -> tuple[int, int]:
        """(picked up, abandoned): attempts started since `since` whose customer picked up,
        and of those, the ones that found no free operator."""
        ...
