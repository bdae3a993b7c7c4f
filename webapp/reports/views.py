"""The report pages. Views parse the period and filters (every page takes a campaign: all
of them by default), call webapp/services/figures.py or the call log (call_log.py: its
query, a call's timeline, the CSV), and render; every figure and time is in the tenant's
time zone."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Response, render_template, request, stream_with_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.outcomes import Outcome
from webapp.extensions import db
from webapp.labels import DETAIL_LABELS, OUTCOME_LABELS, result_label, transfer_reason
from webapp.models import Attempt, Campaign, Lead, Operator, Team
from webapp.reports import bp, call_log, charts
from webapp.roles import tenant_reader
from webapp.services import breaks, csv_export, figures, result_figures
from webapp.services.campaigns import campaigns_of
from webapp.tenancy import current_tenant, get_or_404, scoped

PAGE_SIZE = 50
#: Longest period a page reads, in days (two years and a day).
MAX_DAYS = 732

WEEKDAYS = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))
STEPS = {"day": _l("by day"), "week": _l("by week"), "month": _l("by month")}
#: The results report's groupings (result_figures.GROUPINGS) and their column's heading.
GROUPINGS = {"day": _l("by day"), "operator": _l("by operator"), "campaign": _l("by campaign")}
GROUPING_HEADINGS = {"day": _l("Day"), "operator": _l("Operator"), "campaign": _l("Campaign")}


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@bp.app_template_filter("percent")
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


# --- the period ------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(current_tenant().time_zone)


def _period() -> tuple[figures.Period, str | None]:
    """The period asked for (`from`, `to`: local dates, inclusive), else the last 7 days;
    with an error to show when the dates were not understood."""
    zone = _zone()
    today = datetime.now(zone).date()
    first, last, error = today - timedelta(days=6), today, None
    try:
        if request.args.get("from"):
            first = date.fromisoformat(request.args["from"])
        if request.args.get("to"):
            last = date.fromisoformat(request.args["to"])
    except ValueError:
        first, last = today - timedelta(days=6), today
        error = _(
            "Write dates as YYYY-MM-DD, e.g. %(example)s; the last 7 days are shown.",
            example=today.isoformat(),
        )
    if first > last:
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
        error = _("A report covers at most %(days)s days; the first day was moved.", days=MAX_DAYS)
    return figures.Period(first, last, zone), error


def _int(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _campaigns() -> dict[int, Campaign]:
    """The tenant's campaigns, archived ones too (their calls stay in the reports), the
    default first."""
    return {campaign.id: campaign for campaign in campaigns_of(current_tenant())}


def _campaign() -> int | None:
    """The campaign asked for (`campaign`: its id), None for all of them. An id that is not
    one of the tenant's campaigns is kept: the figures then find nothing, and the page says
    so (never another tenant's calls)."""
    return _int("campaign")


def _page(template: str, period: figures.Period, error: str | None, **context) -> str:
    campaigns = context.pop("campaigns", None)
    if campaigns is None:
        campaigns = _campaigns()
    campaign = context.pop("campaign", _campaign())
    return render_template(
        template,
        period=period,
        period_error=error,
        zone_name=current_tenant().time_zone,
        args=request.args,
        campaigns=campaigns,
        campaign=campaign,
        campaign_unknown=campaign is not None and campaign not in campaigns,
        **context,
    )


def _campaign_name(campaigns: dict[int, Campaign], campaign_id: int) -> str:
    campaign = campaigns.get(campaign_id)
    return campaign.name if campaign is not None else f"#{campaign_id}"


def _operator_names() -> dict[int, str]:
    return dict(
        db.session.execute(
            scoped(Operator).with_only_columns(Operator.id, Operator.name).order_by(Operator.name)
        ).all()
    )


# --- summary ---------------------------------------------------------------------------------


@bp.get("/")
@tenant_reader
def summary():
    period, error = _period()
    tenant = current_tenant()
    campaign, campaigns = _campaign(), _campaigns()
    figures_ = figures.summary(tenant.id, period.start, period.end, campaign)
    bars = [
        (OUTCOME_LABELS[Outcome.ANSWERED.value], figures_.transferred, "answered"),
        (OUTCOME_LABELS[Outcome.NO_ANSWER.value], figures_.no_answer, "no_answer"),
        (OUTCOME_LABELS[Outcome.BUSY.value], figures_.busy, "busy"),
        (OUTCOME_LABELS[Outcome.UNAVAILABLE.value], figures_.unavailable, "unavailable"),
        (_("technical error"), figures_.technical_error, "technical_error"),
    ]
    chart = charts.bars(
        [(str(label), value) for label, value, _kind in bars], title=_("Attempts by what happened")
    )
    # Each campaign apart, when there is more than one and the page is not one campaign's.
    per_campaign, campaign_chart = [], None
    if campaign is None and len(campaigns) > 1:
        found = figures.by_campaign(tenant.id, period.start, period.end)
        order = list(campaigns) + sorted(set(found) - set(campaigns))
        per_campaign = [
            (campaign_id, _campaign_name(campaigns, campaign_id), found[campaign_id])
            for campaign_id in order
            if campaign_id in found
        ]
        campaign_chart = charts.bars(
            [(name, row.attempts) for _id, name, row in per_campaign],
            title=_("Attempts by campaign"),
        )
    return _page(
        "reports/summary.html",
        period,
        error,
        s=figures_,
        chart=chart,
        per_campaign=per_campaign,
        campaign_chart=campaign_chart,
        campaigns=campaigns,
        campaign=campaign,
        very_short_seconds=figures.VERY_SHORT_SECONDS,
    )


# --- operators -------------------------------------------------------------------------------


@bp.get("/operators")
@tenant_reader
def operators():
    period, error = _period()
    tenant = current_tenant()
    campaign, campaigns = _campaign(), _campaigns()
    rows = figures.per_operator(tenant.id, period.start, period.end, campaign_id=campaign)
    names = _operator_names()
    table = sorted(
        ((names.get(op_id, f"#{op_id}"), row) for op_id, row in rows.items()),
        key=lambda item: item[0].lower(),
    )
    # Calls received by campaign, when there is more than one and the page is not one
    # campaign's: {operator id: [(campaign name, calls)]}.
    received: dict[int, list[tuple[str, int]]] = {}
    if campaign is None and len(campaigns) > 1:
        found = figures.received_by_campaign(tenant.id, period.start, period.end)
        order = {campaign_id: index for index, campaign_id in enumerate(campaigns)}
        for (operator_id, campaign_id), count in sorted(
            found.items(), key=lambda item: (order.get(item[0][1], len(order)), item[0][1])
        ):
            received.setdefault(operator_id, []).append(
                (_campaign_name(campaigns, campaign_id), count)
            )
    chart = charts.bars(
        [(name, round(100 * (row.occupancy or 0))) for name, row in table],
        title=_("Occupancy, %"),
        maximum=100,
    )
    away, away_reasons = _breaks(tenant, period, names, set(rows) if campaign is not None else None)
    return _page(
        "reports/operators.html",
        period,
        error,
        table=table,
        away=away,
        away_reasons=away_reasons,
        chart=chart,
        received=received,
        show_received=campaign is None and len(campaigns) > 1,
        campaigns=campaigns,
        campaign=campaign,
        very_short_seconds=figures.VERY_SHORT_SECONDS,
    )


def _breaks(
    tenant, period: figures.Period, names: dict[int, str], only: set[int] | None
) -> tuple[list[tuple], list[str]]:
    """The time each operator spent in each break reason on each day: rows of (day,
    operator name, operator id, {reason: seconds}, total), by day then name, and the reasons
    found (the default ones first). `only`: these operators (a campaign's page)."""
    found = breaks.time_by_reason(tenant, period.start, period.end)
    rows = sorted(
        (
            (
                day,
                names.get(operator_id, f"#{operator_id}"),
                operator_id,
                seconds,
                sum(seconds.values()),
            )
            for (operator_id, day), seconds in found.items()
            if only is None or operator_id in only
        ),
        key=lambda row: (row[0], row[1].lower()),
    )
    seen = {reason for row in rows for reason in row[3]}
    reasons = [r for r in breaks.DEFAULT_REASONS if r in seen]
    reasons += sorted(seen - set(reasons), key=str.lower)
    return rows, reasons


# --- when customers answer -------------------------------------------------------------------


@bp.get("/answers")
@tenant_reader
def answers():
    period, error = _period()
    tenant = current_tenant()
    zone = period.zone
    step = request.args.get("step", "day")
    if step not in STEPS:
        step = "day"
    campaign, campaigns = _campaign(), _campaigns()
    hours = figures.by_hour(tenant.id, period.start, period.end, campaign)
    cells = figures.heat_map(hours, zone)
    # Each campaign's hours of the day apart, when there is more than one and the page is
    # not one campaign's: [(campaign id, name, {local hour: sums})].
    per_campaign: list[tuple[int, str, dict]] = []
    if campaign is None and len(campaigns) > 1:
        found = figures.hour_of_day_by_campaign(tenant.id, period.start, period.end, zone)
        order = list(campaigns) + sorted(set(found) - set(campaigns))
        per_campaign = [
            (campaign_id, _campaign_name(campaigns, campaign_id), found[campaign_id])
            for campaign_id in order
            if campaign_id in found
        ]
    series = figures.trend(hours, zone, step)
    offset = datetime.now(zone).utcoffset() or timedelta(0)
    minute = int(offset.total_seconds() // 60) % 60
    heat = charts.heat_map(cells, [str(day) for day in WEEKDAYS], minute)
    trend_chart = charts.trend([(day.isoformat(), values) for day, values in series])
    return _page(
        "reports/answers.html",
        period,
        error,
        heat=heat,
        cells=cells,
        weekdays=WEEKDAYS,
        minute=minute,
        series=series,
        trend_chart=trend_chart,
        step=step,
        STEPS=STEPS,
        per_campaign=per_campaign,
        campaigns=campaigns,
        campaign=campaign,
    )


# --- failed transfers ------------------------------------------------------------------------


@bp.get("/failed-transfers")
@tenant_reader
def failed_transfers():
    period, error = _period()
    tenant = current_tenant()
    campaign, campaigns = _campaign(), _campaigns()
    names = _operator_names()
    rows = [
        {
            "operator": names.get(op_id, f"#{op_id}"),
            "operator_id": op_id,
            "campaign": _campaign_name(campaigns, campaign_id),
            "campaign_id": campaign_id,
            "reason": transfer_reason(detail, code),
            "detail": detail,
            "code": code,
            "count": count,
        }
        for op_id, campaign_id, detail, code, count in figures.failed_transfers(
            tenant.id, period.start, period.end, campaign
        )
    ]
    per_operator: dict[str, int] = {}
    for row in rows:
        per_operator[row["operator"]] = per_operator.get(row["operator"], 0) + row["count"]
    chart = charts.bars(
        sorted(per_operator.items(), key=lambda item: -item[1]),
        title=_("Failed transfers by operator"),
    )
    return _page(
        "reports/failed_transfers.html",
        period,
        error,
        rows=rows,
        chart=chart,
        show_campaign=campaign is None and len(campaigns) > 1,
        campaigns=campaigns,
        campaign=campaign,
    )


# --- results ---------------------------------------------------------------------------------


@dataclass
class _Results:
    """The results report as the page and its CSV show it."""

    period: figures.Period
    error: str | None
    by: str
    campaign: int | None
    campaigns: dict[int, Campaign]
    #: [(the row's name: its day, operator or campaign; the row)]
    rows: list[tuple[str, result_figures.ResultRow]]
    #: The results found, in the campaign's order.
    order: list[str]
    whole: result_figures.ResultRow


def _results_report() -> _Results:
    period, error = _period()
    by = request.args.get("by", "day")
    if by not in GROUPINGS:
        by = "day"
    campaign, campaigns = _campaign(), _campaigns()
    rows = result_figures.results_by(
        current_tenant().id, period.start, period.end, by, period.zone, campaign
    )
    names = _operator_names() if by == "operator" else {}

    def name(key) -> str:
        if by == "day":
            return key.isoformat()
        if by == "operator":
            return names.get(key, f"#{key}") if key is not None else "—"
        return _campaign_name(campaigns, key)

    listed = campaigns.get(campaign) if campaign is not None else None
    if listed is None:
        listed = next((c for c in campaigns.values() if c.is_default), None)
    order = result_figures.result_order(rows, listed.result_choices if listed else [])
    named = [(name(row.key), row) for row in rows]
    whole = result_figures.total(rows)
    return _Results(period, error, by, campaign, campaigns, named, order, whole)


@bp.get("/results")
@tenant_reader
def results():
    report = _results_report()
    chart = charts.bars(
        [(result_label(result), report.whole.results[result]) for result in report.order],
        title=_("Results recorded"),
    )
    arguments = {k: v for k, v in request.args.items() if k != "by"}
    return _page(
        "reports/results.html",
        report.period,
        report.error,
        by=report.by,
        GROUPINGS=GROUPINGS,
        heading=GROUPING_HEADINGS[report.by],
        rows=report.rows,
        order=report.order,
        whole=report.whole,
        chart=chart,
        csv_url=url_for("reports.results_csv", by=report.by, **arguments),
        campaigns=report.campaigns,
        campaign=report.campaign,
    )


@bp.get("/results.csv")
@tenant_reader
def results_csv():
    """The results report's table as CSV, like the call log's: UTF-8 with a BOM, `;` in
    Russian; for each result its count and its share of answered calls (a number, 0 to
    100, with a point; empty when nothing was answered)."""
    report = _results_report()
    delimiter = ";" if str(get_locale()) == "ru" else ","
    buffer = io.StringIO()
    writer = csv_export.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    header = [str(GROUPING_HEADINGS[report.by]), _("Answered")]
    for result in report.order:
        label = result_label(result)
        header += [label, _("%(result)s, %% of answered", result=label)]
    writer.writerow([*header, _("No result")])

    def share(row, count: int) -> str:
        value = row.share(count)
        return "" if value is None else f"{100 * value:.1f}"

    for label, row in [*report.rows, (_("Total"), report.whole)]:
        cells: list = [label, row.answered]
        for result in report.order:
            count = row.results.get(result, 0)
            cells += [count, share(row, count)]
        writer.writerow([*cells, row.no_result])
    first, last = report.period.first.isoformat(), report.period.last.isoformat()
    name = f"results-by-{report.by}-{first}-{last}.csv"
    return Response(
        "\ufeff" + buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the call log ----------------------------------------------------------------------------


def _call_filters() -> dict:
    outcome, detail = request.args.get("outcome", ""), request.args.get("detail", "")
    return {
        "outcome": outcome if outcome in OUTCOME_LABELS else "",
        "detail": detail if detail in DETAIL_LABELS else "",
        "operator": _int("operator"),
        "team": _int("team"),
        "lead": _int("lead"),
        "sip": _int("sip"),
        "campaign": _campaign(),
    }


@bp.get("/calls")
@tenant_reader
def calls():
    period, error = _period()
    filters = _call_filters()
    query, paged = call_log.after(call_log.query(period, filters), request.args.get("before", ""))
    rows = db.session.execute(query.limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    teams = db.session.execute(
        scoped(Team).with_only_columns(Team.id, Team.name).order_by(Team.name)
    ).all()
    arguments = {k: v for k, v in request.args.items() if k != "before"}
    return _page(
        "reports/calls.html",
        period,
        error,
        rows=rows,
        filters=filters,
        operators=_operator_names(),
        teams=teams,
        first_page=not paged,
        next_url=url_for("reports.calls", **arguments, before=call_log.cursor(rows[-1][0]))
        if more
        else None,
        csv_url=url_for("reports.calls_csv", **arguments),
        first_url=url_for("reports.calls", **arguments),
        local=lambda moment: call_log.local_time(moment, period.zone, say_zone=True),
    )


@bp.get("/calls.csv")
@tenant_reader
def calls_csv():
    """Exactly the filtered call log, every page of it, streamed. UTF-8 with a BOM (so that
    Excel reads Cyrillic), `;` between fields in Russian (what Russian Excel expects), `,`
    otherwise; times in the tenant's zone; no cell is read as a formula (a lead's name, a
    comment: services/csv_export.py)."""
    period, _error = _period()
    filters = _call_filters()
    found = call_log.query(period, filters).execution_options(yield_per=1000)
    delimiter = ";" if str(get_locale()) == "ru" else ","
    lines = call_log.csv_lines(found, period.zone, delimiter)
    name = f"calls-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/calls/<int:attempt_id>")
@tenant_reader
def call(attempt_id: int):
    attempt = get_or_404(Attempt, attempt_id)
    lead = get_or_404(Lead, attempt.lead_id)
    operator = get_or_404(Operator, attempt.operator_id) if attempt.operator_id else None
    campaign = db.session.scalar(scoped(Campaign).where(Campaign.id == attempt.campaign_id))
    return render_template(
        "reports/call.html",
        attempt=attempt,
        lead=lead,
        operator=operator,
        campaign=campaign,
        timeline=call_log.timeline(attempt, _zone()),
        zone_name=current_tenant().time_zone,
    )
