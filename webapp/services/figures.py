"""The reports' figures: sums over attempts (CDRs) by UTC hour, read from the hourly roll-ups
where they exist and from the raw attempts elsewhere, and the operators' on-line time from
their sessions. No Flask here: callers pass the tenant and the period. The report pages
(webapp/reports/), staff's billing (webapp/staff/reports.py) and the engine's store (the
whole hours of `ceil_hour`, webapp/services/dialing.py) all stand on it.

Only finished attempts count (an attempt in progress has no outcome yet). The rules of each
figure are in docs/reports.md; the SQL below is the one definition, used both when rolling up
(webapp/services/rollup.py) and when reading raw rows, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import aliased

from engine.outcomes import Detail, Outcome, TransferResult
from webapp.extensions import db
from webapp.models import (
    Attempt,
    Lead,
    LeadStatus,
    OperatorSession,
    ReportHour,
    ReportOperatorHour,
    ReportRollup,
)
from webapp.models.report import HOUR_COUNTS, HOUR_SECONDS, OPERATOR_COUNTS, OPERATOR_SECONDS

#: An answered call whose talk with the operator ended sooner than this is "very short":
#: answering machines, fax and carrier tones that passed as answered.
VERY_SHORT_SECONDS = 10
TRANSFERRED = (TransferResult.SUCCEEDED.value, TransferResult.UNCONFIRMED.value)
HOUR = timedelta(hours=1)


# --- time ----------------------------------------------------------------------------------


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def utc(moment) -> datetime:
    """A time read from either database as an aware UTC datetime (SQLite gives naive
    datetimes or, for computed hours, text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The start of a local day, in UTC (DST changes at midnight move it, as they should)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """Whole local days, first to last inclusive, in the tenant's time zone."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.last + timedelta(days=1), self.zone)


# --- SQL that differs between the databases ------------------------------------------------


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def hour_of(column):
    """The UTC hour an instant falls in, as stored in the roll-ups' `hour`."""
    if _postgresql():
        utc_ = literal_column("'UTC'")
        return func.timezone(
            utc_, func.date_trunc(literal_column("'hour'"), func.timezone(utc_, column))
        )
    return func.strftime(literal_column("'%Y-%m-%d %H:00:00.000000'"), column)


def day_of(column):
    """The UTC day an instant falls in (its first instant), as stored in `billing_days`."""
    if _postgresql():
        utc_ = literal_column("'UTC'")
        return func.timezone(
            utc_, func.date_trunc(literal_column("'day'"), func.timezone(utc_, column))
        )
    return func.strftime(literal_column("'%Y-%m-%d 00:00:00.000000'"), column)


def seconds(later, earlier):
    if _postgresql():
        return func.extract("epoch", later - earlier)
    # julianday() keeps milliseconds; round away the float noise of the product.
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)


def no_jit() -> None:
    """PostgreSQL's JIT compiles the roll-up's sums for a second or more (its cost estimate
    of the correlated subqueries is high); they run in milliseconds without it."""
    if _postgresql():
        db.session.execute(text("SET LOCAL jit = off"))


def _sum(condition, value=1):
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


# --- the metrics, one definition for roll-ups and raw rows ---------------------------------


def billing_metrics(a) -> dict:
    """What platform staff bill (docs/billing.md), over finished attempts `a`: calls picked up, the
    calls the PBX took, and per call its seconds from answer to the end of our leg rounded to
    the nearest second, and those seconds rounded up to whole minutes."""
    billed = a.answer_at.is_not(None) & a.end_at.is_not(None)
    billed_seconds = cast(func.round(seconds(a.end_at, a.answer_at)), BigInteger)
    return {
        "attempts": func.count(),
        "picked_up": func.count(a.answer_at),
        "transferred": _sum(a.transfer_result.in_(TRANSFERRED)),
        "billed_seconds": _sum(billed, billed_seconds),
        "billable_minutes": _sum(billed, (billed_seconds + 59) // 60),
    }


def hour_metrics(a) -> dict:
    """Sums over attempts `a` (an Attempt alias) for `report_hours`."""
    transferred = a.transfer_result.in_(TRANSFERRED)
    talk = seconds(a.talk_ended_at, func.coalesce(a.transfer_result_at, a.refer_at, a.answer_at))
    talked = transferred & a.talk_ended_at.is_not(None)
    other = aliased(Attempt)
    same_lead = (other.tenant_id == a.tenant_id) & (other.lead_id == a.lead_id)
    answered_before = exists().where(
        same_lead,
        other.outcome == Outcome.ANSWERED.value,
        or_(other.invite_at < a.invite_at, and_(other.invite_at == a.invite_at, other.id < a.id)),
    )
    tried_after = exists().where(
        same_lead,
        or_(other.invite_at > a.invite_at, and_(other.invite_at == a.invite_at, other.id > a.id)),
    )
    lead_exhausted = exists().where(
        Lead.tenant_id == a.tenant_id,
        Lead.id == a.lead_id,
        Lead.status == LeadStatus.EXHAUSTED.value,
    )
    ring = seconds(func.coalesce(a.answer_at, a.end_at), a.ringing_at)
    return {
        **billing_metrics(a),
        "rang": _sum(a.ringing_at.is_not(None) & a.end_at.is_not(None)),
        "talks": _sum(talked),
        "very_short": _sum(talked & (talk < VERY_SHORT_SECONDS)),
        "reached": _sum(a.outcome == Outcome.ANSWERED.value, case((~answered_before, 1), else_=0)),
        "exhausted": _sum(
            a.outcome != Outcome.ANSWERED.value, case((lead_exhausted & ~tried_after, 1), else_=0)
        ),
        "ring_seconds": _sum(a.ringing_at.is_not(None) & a.end_at.is_not(None), ring),
        "talk_seconds": _sum(talked, talk),
    }


def operator_metrics(a) -> dict:
    """Sums over attempts `a` given to an operator, for `report_operator_hours`."""
    transferred = a.transfer_result.in_(TRANSFERRED)
    talk = seconds(a.talk_ended_at, func.coalesce(a.transfer_result_at, a.refer_at, a.answer_at))
    talked = transferred & a.talk_ended_at.is_not(None)
    wrapped_up = talked & a.wrap_up_ended_at.is_not(None)
    return {
        "offered": func.count(a.refer_at),
        "transferred": _sum(transferred),
        "failed_transfers": _sum(a.transfer_result == TransferResult.FAILED.value),
        "talks": _sum(talked),
        "very_short": _sum(talked & (talk < VERY_SHORT_SECONDS)),
        "wrap_ups": _sum(wrapped_up),
        "talk_seconds": _sum(talked, talk),
        "wrap_up_seconds": _sum(wrapped_up, seconds(a.wrap_up_ended_at, a.talk_ended_at)),
    }


def raw_keys(a) -> dict:
    """Grouping keys over raw attempts; constants are literal SQL, not parameters, so that
    the GROUP BY is the very expression of the select list (PostgreSQL checks)."""
    return {
        "hour": hour_of(a.invite_at),
        "campaign_id": a.campaign_id,
        "outcome": a.outcome,
        "detail": func.coalesce(a.detail, literal_column("''")),
        "operator_id": a.operator_id,
        "transfer_sip_code": func.coalesce(a.transfer_sip_code, literal_column("0")),
    }


@dataclass(frozen=True)
class Kind:
    table: type
    metrics: object  # the function above
    names: tuple[str, ...]
    given_to_operator: bool


HOURS = Kind(ReportHour, hour_metrics, HOUR_COUNTS + HOUR_SECONDS, False)
OPERATORS = Kind(ReportOperatorHour, operator_metrics, OPERATOR_COUNTS + OPERATOR_SECONDS, True)


def raw_select(
    kind: Kind,
    tenant_id: int,
    start: datetime,
    end: datetime,
    keys: list[str],
    with_tenant: bool = False,
    campaign_id: int | None = None,
):
    """Sums of raw finished attempts in [start, end) grouped by `keys`; of one campaign's
    attempts only when `campaign_id` is given."""
    a = aliased(Attempt, name="a")
    key_columns = [raw_keys(a)[key].label(key) for key in keys]
    metrics = kind.metrics(a)
    columns = [literal(tenant_id).label("tenant_id")] if with_tenant else []
    query = (
        select(*columns, *key_columns, *[metrics[name].label(name) for name in kind.names])
        .where(
            a.tenant_id == tenant_id,
            a.invite_at >= start,
            a.invite_at < end,
            a.outcome.is_not(None),
        )
        .group_by(*[raw_keys(a)[key] for key in keys])
    )
    if kind.given_to_operator:
        query = query.where(a.operator_id.is_not(None))
    if campaign_id is not None:
        query = query.where(a.campaign_id == campaign_id)
    return query


def _rolled_select(
    kind: Kind,
    tenant_id: int,
    start: datetime,
    end: datetime,
    keys: list[str],
    campaign_id: int | None = None,
):
    table = kind.table
    query = (
        select(
            *[getattr(table, key).label(key) for key in keys],
            *[func.sum(getattr(table, name)).label(name) for name in kind.names],
        )
        .where(table.tenant_id == tenant_id, table.hour >= start, table.hour < end)
        .group_by(*[getattr(table, key) for key in keys])
    )
    if campaign_id is not None:
        query = query.where(table.campaign_id == campaign_id)
    return query


def rolled_until(tenant_id: int) -> datetime | None:
    value = db.session.scalar(
        select(ReportRollup.rolled_until).where(ReportRollup.tenant_id == tenant_id)
    )
    return None if value is None else utc(value)


def split(start: datetime, end: datetime, until: datetime | None):
    """[start, end) as (the whole hours the roll-up holds, or None; the raw ranges)."""
    if until is None:
        return None, [(start, end)]
    first, last = ceil_hour(start), min(floor_hour(end), until)
    if first >= last:
        return None, [(start, end)]
    raw = [(start, first)] if start < first else []
    if last < end:
        raw.append((last, end))
    return (first, last), raw


def sums(
    kind: Kind,
    tenant_id: int,
    start: datetime,
    end: datetime,
    keys: list[str],
    campaign_id: int | None = None,
) -> dict[tuple, dict[str, float]]:
    """{key values: {metric: sum}} over finished attempts in [start, end): rolled-up hours
    plus raw rows for the rest. With `campaign_id`, of that campaign's attempts only (an id
    that is not one of the tenant's campaigns finds nothing)."""
    no_jit()
    rolled, raw = split(start, end, rolled_until(tenant_id))
    queries = [raw_select(kind, tenant_id, a, b, keys, campaign_id=campaign_id) for a, b in raw]
    if rolled is not None:
        queries.append(_rolled_select(kind, tenant_id, *rolled, keys, campaign_id))
    totals: dict[tuple, dict[str, float]] = {}
    for query in queries:
        for row in db.session.execute(query):
            mapping = row._mapping
            key = tuple(utc(mapping[k]) if k == "hour" else mapping[k] for k in keys)
            into = totals.setdefault(key, dict.fromkeys(kind.names, 0))
            for name in kind.names:
                into[name] += float(mapping[name] or 0)
    counts = set(HOUR_COUNTS + OPERATOR_COUNTS)
    for values in totals.values():
        for name in values:
            if name in counts:
                values[name] = round(values[name])
    return totals


def ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


# --- summary ---------------------------------------------------------------------------------


@dataclass
class Summary:
    attempts: int = 0
    picked_up: int = 0  # the customer picked up (200 OK), whatever came next
    transferred: int = 0  # the outcome `answered`: picked up and handed to an operator
    no_answer: int = 0
    busy: int = 0
    unavailable: int = 0
    technical_error: int = 0  # without the abandoned calls
    no_free_operator: int = 0  # abandoned, hung up
    sent_to_fallback: int = 0  # abandoned, sent to the campaign's fallback
    rang: int = 0
    talks: int = 0
    very_short: int = 0
    reached: int = 0
    exhausted: int = 0
    billed_seconds: int = 0  # what staff bill (docs/billing.md); not shown to tenants yet
    billable_minutes: int = 0
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    details: dict[str, int] = field(default_factory=dict)

    @property
    def abandoned(self) -> int:
        """Customers who picked up and found no free operator: hung up, or sent to the
        fallback."""
        return self.no_free_operator + self.sent_to_fallback

    @property
    def abandon_rate(self) -> float | None:
        """Customers who picked up and found no free operator, of all who picked up."""
        return ratio(self.abandoned, self.picked_up)

    @property
    def contact_rate(self) -> float | None:
        """Attempts the customer picked up, of all attempts."""
        return ratio(self.picked_up, self.attempts)

    @property
    def average_ring_seconds(self) -> float | None:
        return ratio(self.ring_seconds, self.rang)

    @property
    def average_talk_seconds(self) -> float | None:
        return ratio(self.talk_seconds, self.talks)


def summary(
    tenant_id: int, start: datetime, end: datetime, campaign_id: int | None = None
) -> Summary:
    """The period's figures: of every campaign, or of one."""
    rows = sums(HOURS, tenant_id, start, end, ["outcome", "detail"], campaign_id)
    return _summary_of(rows.items())


def by_campaign(tenant_id: int, start: datetime, end: datetime) -> dict[int, Summary]:
    """{campaign id: the period's figures of its attempts}; a campaign without attempts in
    the period is left out."""
    rows = sums(HOURS, tenant_id, start, end, ["campaign_id", "outcome", "detail"])
    grouped: dict[int, list] = {}
    for (campaign_id, outcome, detail), values in rows.items():
        grouped.setdefault(campaign_id, []).append(((outcome, detail), values))
    return {campaign_id: _summary_of(items) for campaign_id, items in grouped.items()}


def _summary_of(rows) -> Summary:
    """A Summary from ((outcome, detail), sums) pairs."""
    result = Summary()
    for (outcome, detail), values in rows:
        for name in HOUR_COUNTS + HOUR_SECONDS:
            setattr(result, name, getattr(result, name) + values[name])
        if detail == Detail.NO_FREE_OPERATOR.value:
            result.no_free_operator += values["attempts"]
        elif detail == Detail.SENT_TO_FALLBACK.value:
            result.sent_to_fallback += values["attempts"]
        elif outcome in (
            Outcome.NO_ANSWER,
            Outcome.BUSY,
            Outcome.UNAVAILABLE,
            Outcome.TECHNICAL_ERROR,
        ):
            setattr(result, outcome, getattr(result, outcome) + values["attempts"])
        if detail:
            result.details[detail] = result.details.get(detail, 0) + values["attempts"]
    return result


# --- when customers answer -------------------------------------------------------------------


def by_hour(
    tenant_id: int, start: datetime, end: datetime, campaign_id: int | None = None
) -> dict[datetime, dict]:
    """{UTC hour: sums} of the period, for the heat map and the trends."""
    rows = sums(HOURS, tenant_id, start, end, ["hour"], campaign_id)
    return {key[0]: values for key, values in rows.items()}


def heat_map(hours: dict[datetime, dict], zone: ZoneInfo) -> dict[tuple[int, int], dict]:
    """{(ISO weekday 1-7, local hour 0-23): {"attempts", "picked_up"}}. A UTC hour goes to the
    local hour it starts in: with DST, the repeated autumn hour adds to its cell and the
    skipped spring hour has none; in a zone a half hour off UTC, each cell is the hour
    from HH:30 (the page says so)."""
    cells: dict[tuple[int, int], dict] = {}
    for hour, values in hours.items():
        local = hour.astimezone(zone)
        cell = cells.setdefault((local.isoweekday(), local.hour), {"attempts": 0, "picked_up": 0})
        cell["attempts"] += values["attempts"]
        cell["picked_up"] += values["picked_up"]
    return cells


def hour_of_day_by_campaign(
    tenant_id: int, start: datetime, end: datetime, zone: ZoneInfo
) -> dict[int, dict[int, dict]]:
    """{campaign id: {local hour 0-23: {"attempts", "picked_up"}}}: when each campaign's
    customers pick up, every day of the period together (hours as in `heat_map`)."""
    out: dict[int, dict[int, dict]] = {}
    for (campaign_id, hour), values in sums(
        HOURS, tenant_id, start, end, ["campaign_id", "hour"]
    ).items():
        cells = out.setdefault(campaign_id, {})
        cell = cells.setdefault(hour.astimezone(zone).hour, {"attempts": 0, "picked_up": 0})
        cell["attempts"] += values["attempts"]
        cell["picked_up"] += values["picked_up"]
    return out


def trend(hours: dict[datetime, dict], zone: ZoneInfo, step: str) -> list[tuple[date, dict]]:
    """[(first local day of the day / week / month, sums)], oldest first."""
    buckets: dict[date, dict] = {}
    for hour, values in hours.items():
        day = hour.astimezone(zone).date()
        if step == "week":
            day -= timedelta(days=day.weekday())
        elif step == "month":
            day = day.replace(day=1)
        into = buckets.setdefault(
            day, {"attempts": 0, "picked_up": 0, "transferred": 0, "abandoned": 0}
        )
        for name in ("attempts", "picked_up", "transferred"):
            into[name] += values[name]
    return sorted(buckets.items())


# --- operators -------------------------------------------------------------------------------


def on_line_seconds(
    tenant_id: int, start: datetime, end: datetime, now: datetime | None = None
) -> dict[int, float]:
    """Seconds each operator was on line inside [start, end); a session still open counts
    until now."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(
        select(
            OperatorSession.operator_id, OperatorSession.on_line_at, OperatorSession.off_line_at
        ).where(
            OperatorSession.tenant_id == tenant_id,
            OperatorSession.on_line_at < end,
            or_(OperatorSession.off_line_at.is_(None), OperatorSession.off_line_at > start),
        )
    )
    out: dict[int, float] = {}
    for operator_id, on, off in rows:
        begin = max(utc(on), start)
        finish = min(utc(off) if off is not None else now, end)
        if finish > begin:
            out[operator_id] = out.get(operator_id, 0.0) + (finish - begin).total_seconds()
    return out


@dataclass
class OperatorFigures:
    operator_id: int
    offered: int = 0
    transferred: int = 0
    failed_transfers: int = 0
    talks: int = 0
    very_short: int = 0
    wrap_ups: int = 0
    talk_seconds: float = 0.0
    wrap_up_seconds: float = 0.0
    on_line_seconds: float = 0.0
    #: With a campaign: the time with customers and in wrap-up of all the operator's calls,
    #: whatever their campaign. An operator on line is on line for every campaign they work,
    #: so time free and occupancy are the operator's whole, not a campaign's share.
    all_working_seconds: float | None = None

    @property
    def working_seconds(self) -> float:
        """Time with customers and in wrap-up: the operator's work on the leads."""
        return self.talk_seconds + self.wrap_up_seconds

    @property
    def _busy_seconds(self) -> float:
        return (
            self.working_seconds if self.all_working_seconds is None else self.all_working_seconds
        )

    @property
    def free_seconds(self) -> float:
        return max(0.0, self.on_line_seconds - self._busy_seconds)

    @property
    def occupancy(self) -> float | None:
        """(Talk + wrap-up) / time on line, as workforce planning and docs/pacing.md count it."""
        if not self.on_line_seconds:
            return None
        return min(1.0, self._busy_seconds / self.on_line_seconds)


def per_operator(
    tenant_id: int,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    campaign_id: int | None = None,
) -> dict[int, OperatorFigures]:
    """{operator id: figures} of every operator who was on line or got a call. With
    `campaign_id`: the operators who got calls of that campaign, with the figures of those
    calls, and their time on line, time free and occupancy whole (`all_working_seconds`)."""
    out: dict[int, OperatorFigures] = {}
    rows = sums(OPERATORS, tenant_id, start, end, ["operator_id"], campaign_id)
    for (operator_id,), values in rows.items():
        out[operator_id] = OperatorFigures(operator_id, **values)
    if campaign_id is None:
        for operator_id, seconds_on in on_line_seconds(tenant_id, start, end, now).items():
            out.setdefault(operator_id, OperatorFigures(operator_id)).on_line_seconds = seconds_on
        return out
    whole = per_operator(tenant_id, start, end, now)
    for operator_id, figures_ in out.items():
        everything = whole.get(operator_id, OperatorFigures(operator_id))
        figures_.on_line_seconds = everything.on_line_seconds
        figures_.all_working_seconds = everything.working_seconds
    return out


def received_by_campaign(tenant_id: int, start: datetime, end: datetime) -> dict[tuple, int]:
    """{(operator id, campaign id): calls received (transferred to the operator)}; pairs
    without a call received are left out."""
    rows = sums(OPERATORS, tenant_id, start, end, ["operator_id", "campaign_id"])
    return {key: values["transferred"] for key, values in rows.items() if values["transferred"]}


def failed_transfers(
    tenant_id: int, start: datetime, end: datetime, campaign_id: int | None = None
) -> list[tuple]:
    """[(operator id, campaign id, detail, transfer SIP code, failed transfers)], most
    first."""
    keys = ["operator_id", "campaign_id", "detail", "transfer_sip_code"]
    rows = sums(OPERATORS, tenant_id, start, end, keys, campaign_id)
    found = [
        (*key, values["failed_transfers"])
        for key, values in rows.items()
        if values["failed_transfers"]
    ]
    return sorted(found, key=lambda row: (-row[4], *row[:4]))
