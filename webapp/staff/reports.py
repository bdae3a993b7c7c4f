"""What platform staff read across tenants: billing per tenant and month, and ops (engine
state, calls in flight, SIP error rates, queues, workers). Read-only, every query.

Months are calendar months in UTC (docs/billing.md): an attempt belongs to the month of its
`invite_at`. Billing sums the daily sums the reports' roll-up job keeps (`billing_days`,
webapp/services/rollup.py, with the one definition of each figure in webapp/services/figures.py:
billing_metrics) and reads raw attempts only after each tenant's last rolled-up hour. Beside
each total, the billable minutes of each campaign, summed from the rolled-up hours
(`report_hours`, kept per campaign) and the raw attempts after them.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, Worker
from sqlalchemy import func, select, text, true
from sqlalchemy.orm import aliased

from engine.bus import HOST_GONE_AFTER, TenantKeys, hosts_key
from webapp.extensions import db
from webapp.jobs.queues import QUEUES
from webapp.models import Attempt, BillingDay, Campaign, ReportHour, ReportRollup, Tenant
from webapp.models.report import BILLED
from webapp.services import csv_export
from webapp.services.figures import billing_metrics, rolled_until

# --- months --------------------------------------------------------------------------------


def month_start(value: str | None, now: datetime | None = None) -> datetime:
    """The first instant (UTC) of a month given as `YYYY-MM`; the current month for None.
    ValueError for anything else."""
    if not value:
        now = now or datetime.now(UTC)
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    year, _, month = value.partition("-")
    if not (len(year) == 4 and year.isdigit() and len(month) == 2 and month.isdigit()):
        raise ValueError(value)
    start = datetime(int(year), int(month), 1, tzinfo=UTC)  # ValueError for month 13
    if start.year < 2000:
        raise ValueError(value)
    return start


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def previous_month(start: datetime) -> datetime:
    return (start - timedelta(days=1)).replace(day=1)


# --- billing -------------------------------------------------------------------------------


@dataclass
class Usage:
    """One tenant's billable use in one month: the figures of `BILLED`."""

    tenant_id: int
    tenant_name: str
    attempts: int = 0
    picked_up: int = 0
    transferred: int = 0
    billed_seconds: int = 0
    billable_minutes: int = 0
    #: {campaign id: billable minutes}: the campaigns with attempts, adding up to the total.
    minutes_by_campaign: dict[int, int] = field(default_factory=dict)

    def add(self, other: Usage) -> None:
        for name in BILLED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        _add_minutes(self.minutes_by_campaign, other.minutes_by_campaign)


def _add_minutes(into: dict[int, int], more: dict[int, int]) -> None:
    for campaign_id, minutes in more.items():
        into[campaign_id] = into.get(campaign_id, 0) + minutes


def _usage(row, tenant_id: int, tenant_name: str) -> Usage:
    return Usage(tenant_id, tenant_name, *(int(getattr(row, name) or 0) for name in BILLED))


def _bounds(start: datetime, tenant_ids: list[int] | None = None):
    """PostgreSQL: each tenant's (or each of `tenant_ids`') first instant to read raw in the
    month from `start`, worked out apart (MATERIALIZED): under row-level security only a
    plain column, not GREATEST(...), reaches the index."""
    tenants = Tenant.__table__
    since = func.coalesce(ReportRollup.rolled_until, start)
    query = select(
        tenants.c.id.label("tenant_id"), func.greatest(since, start).label("since")
    ).select_from(tenants.outerjoin(ReportRollup, ReportRollup.tenant_id == tenants.c.id))
    if tenant_ids is not None:
        query = query.where(tenants.c.id.in_(tenant_ids))
    return query.cte("bounds").prefix_with("MATERIALIZED")


def billing(start: datetime) -> list[Usage]:
    """Every tenant's use in the month that begins at `start` (UTC), by tenant name; tenants
    without attempts that month are listed with zeros. Finished attempts only, as the
    roll-ups hold them (an attempt in progress counts once it ends).

    The days the roll-up job keeps (`billing_days`, sums of the tenant's rolled-up hours, so
    a UTC month adds up exactly) are summed; only each tenant's attempts since its
    `rolled_until` (the last hour or so) are read raw, through the index (tenant_id,
    invite_at): on PostgreSQL one index range per tenant (a LATERAL join)."""
    end = next_month(start)
    days = (
        select(BillingDay.tenant_id, *[func.sum(getattr(BillingDay, n)).label(n) for n in BILLED])
        .where(BillingDay.day >= start, BillingDay.day < end)
        .group_by(BillingDay.tenant_id)
        .subquery("days")
    )
    a = aliased(Attempt, name="a")
    metrics = billing_metrics(a)
    tenants = Tenant.__table__
    since = func.coalesce(ReportRollup.rolled_until, start)
    if db.engine.dialect.name == "postgresql":
        bounds = _bounds(start)
        raw = (
            select(*[metrics[n].label(n) for n in BILLED])
            .where(
                a.tenant_id == bounds.c.tenant_id,
                a.invite_at >= bounds.c.since,
                a.invite_at < end,
                a.outcome.is_not(None),
            )
            .lateral("raw")
        )
        joined = tenants.join(bounds, bounds.c.tenant_id == tenants.c.id).join(raw, true())
    else:  # SQLite: one machine, small; group the month directly
        raw = (
            select(a.tenant_id, *[metrics[n].label(n) for n in BILLED])
            .select_from(a)
            .outerjoin(ReportRollup, ReportRollup.tenant_id == a.tenant_id)
            .where(a.invite_at >= func.max(since, start), a.invite_at < end, a.outcome.is_not(None))
            .group_by(a.tenant_id)
            .subquery("raw")
        )
        joined = tenants.outerjoin(raw, raw.c.tenant_id == tenants.c.id)
    query = (
        select(
            tenants.c.id,
            tenants.c.name,
            *[
                (func.coalesce(getattr(raw.c, n), 0) + func.coalesce(getattr(days.c, n), 0)).label(
                    n
                )
                for n in BILLED
            ],
        )
        .select_from(joined.outerjoin(days, days.c.tenant_id == tenants.c.id))
        .order_by(tenants.c.name, tenants.c.id)
    )
    usage = [_usage(row, row.id, row.name) for row in db.session.execute(query)]
    # A tenant with one campaign has every attempt in it: its minutes are the total, and
    # only the hourly rows of tenants with several campaigns are read (docs/billing.md).
    campaigns = {
        tenant_id: (count, first)
        for tenant_id, count, first in db.session.execute(
            select(Campaign.tenant_id, func.count(), func.min(Campaign.id)).group_by(
                Campaign.tenant_id
            )
        )
    }
    several = [tenant_id for tenant_id, (count, _id) in campaigns.items() if count > 1]
    minutes = campaign_minutes(start, several) if several else {}
    for row in usage:
        count, only = campaigns.get(row.tenant_id, (0, None))
        if count == 1:
            row.minutes_by_campaign = {only: row.billable_minutes} if row.attempts else {}
        else:
            row.minutes_by_campaign = minutes.get(row.tenant_id, {})
    return usage


def campaign_minutes(start: datetime, tenant_ids: list[int]) -> dict[int, dict[int, int]]:
    """{tenant id: {campaign id: billable minutes}} of the month that begins at `start` for
    the tenants `tenant_ids`, as `billing` counts them: the rolled-up hours of the month
    (`report_hours`, by campaign; `billing_days` holds no campaign) and the raw attempts
    after each tenant's `rolled_until`. Campaigns without attempts in the month are left
    out. The hourly rows are many times the daily ones (24 times in bench/staff.py), so
    `billing` asks only for the tenants with more than one campaign."""
    end = next_month(start)
    out: dict[int, dict[int, int]] = {}
    rolled = (
        select(ReportHour.tenant_id, ReportHour.campaign_id, func.sum(ReportHour.billable_minutes))
        .where(
            ReportHour.tenant_id.in_(tenant_ids), ReportHour.hour >= start, ReportHour.hour < end
        )
        .group_by(ReportHour.tenant_id, ReportHour.campaign_id)
    )
    a = aliased(Attempt, name="a")
    minutes = billing_metrics(a)["billable_minutes"]
    if db.engine.dialect.name == "postgresql":
        bounds = _bounds(start, tenant_ids)
        lateral = (
            select(a.campaign_id, minutes.label("minutes"))
            .where(
                a.tenant_id == bounds.c.tenant_id,
                a.invite_at >= bounds.c.since,
                a.invite_at < end,
                a.outcome.is_not(None),
            )
            .group_by(a.campaign_id)
            .lateral("raw")
        )
        raw = select(bounds.c.tenant_id, lateral.c.campaign_id, lateral.c.minutes).select_from(
            bounds.join(lateral, true())
        )
    else:  # SQLite: one machine, small
        since = func.coalesce(ReportRollup.rolled_until, start)
        raw = (
            select(a.tenant_id, a.campaign_id, minutes)
            .select_from(a)
            .outerjoin(ReportRollup, ReportRollup.tenant_id == a.tenant_id)
            .where(
                a.tenant_id.in_(tenant_ids),
                a.invite_at >= func.max(since, start),
                a.invite_at < end,
                a.outcome.is_not(None),
            )
            .group_by(a.tenant_id, a.campaign_id)
        )
    for query in (rolled, raw):
        for tenant_id, campaign_id, count in db.session.execute(query):
            _add_minutes(out.setdefault(tenant_id, {}), {campaign_id: int(count or 0)})
    return out


def campaigns_by_tenant(tenant_ids: list[int] | None = None) -> dict[int, dict[int, Campaign]]:
    """{tenant id: {campaign id: campaign}}, each tenant's default campaign first, then by
    name; every tenant's (staff read across tenants), or those of `tenant_ids`."""
    query = select(Campaign).order_by(Campaign.tenant_id, Campaign.is_default.desc(), Campaign.name)
    if tenant_ids is not None:
        query = query.where(Campaign.tenant_id.in_(tenant_ids))
    out: dict[int, dict[int, Campaign]] = {}
    for campaign in db.session.scalars(query):
        out.setdefault(campaign.tenant_id, {})[campaign.id] = campaign
    return out


def named_minutes(
    usage: Usage, campaigns: dict[int, Campaign], label=lambda campaign: campaign.name
) -> list[tuple[str, int]]:
    """[(campaign's label, billable minutes)] of a tenant's use, in the order of
    `campaigns` (the default first); a campaign not found there (it cannot be deleted, so
    never) is `#id`."""
    order = {campaign_id: index for index, campaign_id in enumerate(campaigns)}
    return [
        (label(campaigns[c]) if c in campaigns else f"#{c}", minutes)
        for c, minutes in sorted(
            usage.minutes_by_campaign.items(), key=lambda item: (order.get(item[0], 1e9), item[0])
        )
    ]


def tenant_months(tenant_id: int, last: datetime, months: int = 12) -> list[tuple[datetime, Usage]]:
    """One tenant's use month by month, the `months` months up to the one starting at `last`:
    the rolled-up hours and the raw attempts after them, as `billing` counts."""
    until = rolled_until(tenant_id)
    a = aliased(Attempt, name="a")
    metrics = billing_metrics(a)
    result = []
    start = last
    for _ in range(months):
        end = next_month(start)
        rolled_end = max(start, min(end, until)) if until is not None else start
        rolled = db.session.execute(
            select(
                *[func.coalesce(func.sum(getattr(BillingDay, n)), 0).label(n) for n in BILLED]
            ).where(
                BillingDay.tenant_id == tenant_id,
                BillingDay.day >= start,
                BillingDay.day < rolled_end,
            )
        ).one()
        raw_where = (
            a.tenant_id == tenant_id,
            a.invite_at >= rolled_end,
            a.invite_at < end,
            a.outcome.is_not(None),
        )
        raw = db.session.execute(
            select(*[metrics[n].label(n) for n in BILLED]).where(*raw_where)
        ).one()
        usage = _usage(rolled, tenant_id, "")
        usage.add(_usage(raw, tenant_id, ""))
        by_campaign = [
            select(ReportHour.campaign_id, func.sum(ReportHour.billable_minutes))
            .where(
                ReportHour.tenant_id == tenant_id,
                ReportHour.hour >= start,
                ReportHour.hour < rolled_end,
            )
            .group_by(ReportHour.campaign_id),
            select(a.campaign_id, metrics["billable_minutes"])
            .where(*raw_where)
            .group_by(a.campaign_id),
        ]
        for query in by_campaign:
            for campaign_id, minutes in db.session.execute(query):
                _add_minutes(usage.minutes_by_campaign, {campaign_id: int(minutes or 0)})
        result.append((start, usage))
        start = previous_month(start)
    return result


CSV_COLUMNS = (
    "month",
    "tenant_id",
    "tenant",
    "attempts",
    "picked_up",
    "transferred",
    "billed_seconds",
    "billable_minutes",
    # `default=120; tv-offer=40`: each campaign's key and billable minutes, the default
    # campaign first (docs/billing.md).
    "billable_minutes_by_campaign",
)


def billing_csv(start: datetime, usage: list[Usage]) -> bytes:
    """The month's billing for the accounting system: UTF-8 with a BOM (spreadsheets then read
    Cyrillic names right), comma-separated, one row per tenant, a header row of
    `CSV_COLUMNS`; no total row (accounting sums for itself). A tenant's name is never
    read as a formula (services/csv_export.py). The last column holds each campaign's
    minutes, by the campaign's key (letters, digits and dashes: never `=` or `;`)."""
    out = io.StringIO()
    writer = csv_export.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    month = start.strftime("%Y-%m")
    campaigns = campaigns_by_tenant()
    for u in usage:
        by_campaign = named_minutes(
            u, campaigns.get(u.tenant_id, {}), label=lambda campaign: campaign.key
        )
        writer.writerow(
            [
                month,
                u.tenant_id,
                u.tenant_name,
                u.attempts,
                u.picked_up,
                u.transferred,
                u.billed_seconds,
                u.billable_minutes,
                "; ".join(f"{key}={minutes}" for key, minutes in by_campaign),
            ]
        )
    return out.getvalue().encode("utf-8-sig")


# --- ops -----------------------------------------------------------------------------------


@dataclass
class SipCodes:
    """A tenant's finished attempts since some moment, by the INVITE's final SIP code
    (None: no final response: the PBX never answered, or the attempt ended otherwise)."""

    total: int = 0
    by_code: dict[int | None, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Attempts with no final response, or one that is not an ordinary end of a call:
        ordinary are 200, busy (486, 600), no answer (408, 480, 487), declined (603) and
        numbers that do not exist (404, 604)."""
        ordinary = {200, 404, 408, 480, 486, 487, 600, 603, 604}
        return sum(n for code, n in self.by_code.items() if code not in ordinary)

    @property
    def codes(self) -> list[tuple[int, int]]:
        """(SIP code, attempts) by code, without the attempts that got no final response."""
        return sorted((code, n) for code, n in self.by_code.items() if code is not None)

    @property
    def no_response(self) -> int:
        return self.by_code.get(None, 0)

    @property
    def error_rate(self) -> float:
        return self.errors / self.total if self.total else 0.0


def sip_codes(since: datetime) -> dict[int, SipCodes]:
    """Finished attempts since `since` of every tenant that has any, by SIP code."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        sql = """
            SELECT t.id, c.sip_code, c.n FROM tenants t CROSS JOIN LATERAL (
                SELECT a.sip_code, count(*) AS n FROM attempts a
                WHERE a.tenant_id = t.id AND a.invite_at >= :since AND a.outcome IS NOT NULL
                GROUP BY a.sip_code
            ) c"""
        since_value = since
    else:
        sql = """SELECT a.tenant_id, a.sip_code, count(*) FROM attempts a
                 WHERE a.invite_at >= :since AND a.outcome IS NOT NULL
                 GROUP BY a.tenant_id, a.sip_code"""
        since_value = since.strftime("%Y-%m-%d %H:%M:%S.%f")
    result: dict[int, SipCodes] = {}
    for tenant_id, code, n in db.session.execute(text(sql), {"since": since_value}):
        codes = result.setdefault(tenant_id, SipCodes())
        codes.total += n
        codes.by_code[code] = codes.by_code.get(code, 0) + n
    return result


@dataclass
class EngineView:
    """A tenant's engine as the engine itself last published it, and who holds its lease."""

    holder: str | None  # the engine host holding the lease, None: no engine runs it
    state: str = "stopped"
    reason: str = ""
    detail: str = ""
    warning: str = ""
    registration: str = ""
    registration_detail: str = ""
    in_flight: int = 0


def engine_views(
    connection: redis.Redis, prefix: str, tenant_ids: list[int]
) -> dict[int, EngineView]:
    """Lease holder and live state of each tenant's engine, in one round trip."""
    pipe = connection.pipeline(transaction=False)
    for tenant_id in tenant_ids:
        keys = TenantKeys(prefix, tenant_id)
        pipe.get(keys.lease)
        pipe.hgetall(keys.state)
    replies = pipe.execute()
    views = {}
    for index, tenant_id in enumerate(tenant_ids):
        holder, raw = replies[2 * index], replies[2 * index + 1]
        state = {key.decode(): json.loads(value) for key, value in raw.items()}
        view = EngineView(holder.decode() if holder else None)
        for name in ("state", "reason", "detail", "warning", "registration", "registration_detail"):
            if state.get(name):
                setattr(view, name, str(state[name]))
        view.in_flight = int(state.get("in_flight", 0)) if view.state != "stopped" else 0
        views[tenant_id] = view
    return views


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: int
    failed: int
    workers: int


@dataclass(frozen=True)
class WorkerView:
    name: str
    hostname: str
    queues: str
    state: str
    heartbeat: datetime | None


def queue_views(connection: redis.Redis, prefix: str) -> list[QueueView]:
    views = []
    for name in QUEUES:
        queue = Queue(f"{prefix}{name}", connection=connection)
        views.append(
            QueueView(name, queue.count, queue.failed_job_registry.count, Worker.count(queue=queue))
        )
    return views


def worker_views(connection: redis.Redis, prefix: str) -> list[WorkerView]:
    """The RQ workers alive on this deployment's queues (RQ drops a worker whose heartbeat
    stopped)."""
    seen: dict[str, WorkerView] = {}
    for name in QUEUES:
        queue = Queue(f"{prefix}{name}", connection=connection)
        for worker in Worker.all(queue=queue):
            seen[worker.name] = WorkerView(
                worker.name,
                worker.hostname or "",
                ", ".join(worker.queue_names()),
                str(worker.get_state()),
                worker.last_heartbeat,
            )
    return sorted(seen.values(), key=lambda w: w.name)


def engine_hosts(connection: redis.Redis, prefix: str, now: float | None = None) -> list[str]:
    """The engine hosts alive: their heartbeat (every second) is younger than
    `HOST_GONE_AFTER`."""
    now = time.time() if now is None else now
    return sorted(
        h.decode()
        for h in connection.zrangebyscore(hosts_key(prefix), now - HOST_GONE_AFTER, "+inf")
    )
