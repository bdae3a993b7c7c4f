"""The report pages. Views parse the period and filters, call webapp/services/figures.py or
build the call log's query, and render; every figure is in the tenant's time zone."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Response, render_template, request, stream_with_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_

from engine.outcomes import Outcome
from webapp.extensions import db
from webapp.labels import DETAIL_LABELS, OUTCOME_LABELS, TRANSFER_LABELS, transfer_reason
from webapp.models import Attempt, Lead, Operator, Team
from webapp.reports import bp, charts
from webapp.roles import tenant_reader
from webapp.services import csv_export, figures
from webapp.tenancy import current_tenant, get_or_404, scoped

PAGE_SIZE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Longest period a page reads, in days (two years and a day).
MAX_DAYS = 732

WEEKDAYS = (_l("Mon"), _l("Tue"), _l("Wed"), _l("Thu"), _l("Fri"), _l("Sat"), _l("Sun"))
STEPS = {"day": _l("by day"), "week": _l("by week"), "month": _l("by month")}


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


def _page(template: str, period: figures.Period, error: str | None, **context) -> str:
    return render_template(
        template,
        period=period,
        period_error=error,
        zone_name=current_tenant().time_zone,
        args=request.args,
        **context,
    )


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
    figures_ = figures.summary(tenant.id, period.start, period.end)
    bars = [
        (OUTCOME_LABELS[Outcome.ANSWERED.value], figures_.answered, "answered"),
        (OUTCOME_LABELS[Outcome.NO_ANSWER.value], figures_.no_answer, "no_answer"),
        (OUTCOME_LABELS[Outcome.BUSY.value], figures_.busy, "busy"),
        (OUTCOME_LABELS[Outcome.UNAVAILABLE.value], figures_.unavailable, "unavailable"),
        (_("technical error"), figures_.technical_error, "technical_error"),
    ]
    chart = charts.bars(
        [(str(label), value) for label, value, _kind in bars], title=_("Attempts by what happened")
    )
    return _page(
        "reports/summary.html",
        period,
        error,
        s=figures_,
        chart=chart,
        very_short_seconds=figures.VERY_SHORT_SECONDS,
    )


# --- operators -------------------------------------------------------------------------------


@bp.get("/operators")
@tenant_reader
def operators():
    period, error = _period()
    tenant = current_tenant()
    rows = figures.per_operator(tenant.id, period.start, period.end)
    names = _operator_names()
    table = sorted(
        ((names.get(op_id, f"#{op_id}"), row) for op_id, row in rows.items()),
        key=lambda item: item[0].lower(),
    )
    chart = charts.bars(
        [(name, round(100 * (row.occupancy or 0))) for name, row in table],
        title=_("Occupancy, %"),
        maximum=100,
    )
    return _page(
        "reports/operators.html",
        period,
        error,
        table=table,
        chart=chart,
        very_short_seconds=figures.VERY_SHORT_SECONDS,
    )


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
    hours = figures.by_hour(tenant.id, period.start, period.end)
    cells = figures.heat_map(hours, zone)
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
    )


# --- failed transfers ------------------------------------------------------------------------


@bp.get("/failed-transfers")
@tenant_reader
def failed_transfers():
    period, error = _period()
    tenant = current_tenant()
    names = _operator_names()
    rows = [
        (names.get(op_id, f"#{op_id}"), op_id, transfer_reason(detail, code), detail, code, count)
        for op_id, detail, code, count in figures.failed_transfers(
            tenant.id, period.start, period.end
        )
    ]
    per_operator: dict[str, int] = {}
    for name, *_rest, count in rows:
        per_operator[name] = per_operator.get(name, 0) + count
    chart = charts.bars(
        sorted(per_operator.items(), key=lambda item: -item[1]),
        title=_("Failed transfers by operator"),
    )
    return _page("reports/failed_transfers.html", period, error, rows=rows, chart=chart)


# --- the call log ----------------------------------------------------------------------------


def _int(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _call_filters() -> dict:
    outcome, detail = request.args.get("outcome", ""), request.args.get("detail", "")
    return {
        "outcome": outcome if outcome in OUTCOME_LABELS else "",
        "detail": detail if detail in DETAIL_LABELS else "",
        "operator": _int("operator"),
        "team": _int("team"),
        "lead": _int("lead"),
        "sip": _int("sip"),
    }


def _call_query(period: figures.Period, filters: dict):
    query = (
        scoped(Attempt)
        .add_columns(Lead.name, Lead.phone, Lead.external_id, Operator.name)
        .join(Lead, (Lead.tenant_id == Attempt.tenant_id) & (Lead.id == Attempt.lead_id))
        .outerjoin(
            Operator,
            (Operator.tenant_id == Attempt.tenant_id) & (Operator.id == Attempt.operator_id),
        )
        .where(Attempt.invite_at >= period.start, Attempt.invite_at < period.end)
    )
    if filters["outcome"]:
        query = query.where(Attempt.outcome == filters["outcome"])
    if filters["detail"]:
        query = query.where(Attempt.detail == filters["detail"])
    if filters["operator"] is not None:
        query = query.where(Attempt.operator_id == filters["operator"])
    if filters["team"] is not None:
        team_operators = (
            scoped(Operator)
            .with_only_columns(Operator.id)
            .where(Operator.team_id == filters["team"])
        )
        query = query.where(Attempt.operator_id.in_(team_operators))
    if filters["lead"] is not None:
        query = query.where(Attempt.lead_id == filters["lead"])
    if filters["sip"] is not None:
        query = query.where(
            or_(Attempt.sip_code == filters["sip"], Attempt.transfer_sip_code == filters["sip"])
        )
    return query.order_by(Attempt.invite_at.desc(), Attempt.id.desc())


def _cursor(attempt: Attempt) -> str:
    moment = figures.utc(attempt.invite_at)
    return f"{int(moment.timestamp() * 1_000_000)}.{attempt.id}"


def _after(query):
    """Keyset paging: the rows after the cursor `before` (the last row of the previous page)."""
    text = request.args.get("before", "")
    first, dot, second = text.partition(".")
    if not (dot and first.isdigit() and second.isdigit() and len(text) < 40):
        return query, False
    moment = EPOCH + timedelta(microseconds=int(first))
    return query.where(
        or_(Attempt.invite_at < moment, and_(Attempt.invite_at == moment, Attempt.id < int(second)))
    ), True


@bp.get("/calls")
@tenant_reader
def calls():
    period, error = _period()
    filters = _call_filters()
    query, paged = _after(_call_query(period, filters))
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
        next_url=url_for("reports.calls", **arguments, before=_cursor(rows[-1][0]))
        if more
        else None,
        csv_url=url_for("reports.calls_csv", **arguments),
        first_url=url_for("reports.calls", **arguments),
        local=lambda moment: _local(moment, period.zone, say_zone=True),
    )


def _local(moment: datetime | None, zone: ZoneInfo, say_zone: bool = False) -> str:
    """Local time; with `say_zone`, an hour that happens twice (the autumn DST change) says
    which of the two it is (e.g. 02:30:00 CEST, then 02:30:00 CET)."""
    if moment is None:
        return ""
    local = figures.utc(moment).astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if say_zone and local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        text += f" {local.tzname()}"
    return text


def _seconds(later: datetime | None, earlier: datetime | None) -> str:
    if later is None or earlier is None:
        return ""
    return f"{(figures.utc(later) - figures.utc(earlier)).total_seconds():.1f}"


def csv_columns() -> list[str]:
    return [
        _("Attempt"),
        _("Started"),
        _("Lead"),
        _("CRM id"),
        _("Lead name"),
        _("Number"),
        _("Operator"),
        _("Outcome"),
        _("Detail"),
        _("SIP code"),
        _("SIP reason"),
        _("Ringing"),
        _("Answered"),
        _("REFER"),
        _("Refer-To"),
        _("Transfer"),
        _("Transfer SIP code"),
        _("Transfer SIP reason"),
        _("Talk ended"),
        _("Wrap-up ended"),
        _("Ended"),
        _("Ring seconds"),
        _("Talk seconds"),
        _("Wrap-up seconds"),
        _("Operator's result"),
        _("Comment"),
    ]


@bp.get("/calls.csv")
@tenant_reader
def calls_csv():
    """Exactly the filtered call log, every page of it, streamed. UTF-8 with a BOM (so that
    Excel reads Cyrillic), `;` between fields in Russian (what Russian Excel expects), `,`
    otherwise; times in the tenant's zone; no cell is read as a formula (a lead's name, a
    comment: services/csv_export.py)."""
    period, _error = _period()
    filters = _call_filters()
    query = _call_query(period, filters).execution_options(yield_per=1000)
    zone = period.zone
    delimiter = ";" if str(get_locale()) == "ru" else ","
    outcome_labels = {k: str(v) for k, v in OUTCOME_LABELS.items()}
    detail_labels = {k: str(v) for k, v in DETAIL_LABELS.items()}
    transfer_labels = {k: str(v) for k, v in TRANSFER_LABELS.items()}
    header = csv_columns()

    def rows():
        buffer = io.StringIO()
        writer = csv_export.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        yield "\ufeff" + buffer.getvalue()
        for attempt, lead_name, phone, external_id, operator_name in db.session.execute(query):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                [
                    attempt.id,
                    _local(attempt.invite_at, zone),
                    attempt.lead_id,
                    external_id or "",
                    lead_name,
                    phone,
                    operator_name or "",
                    outcome_labels.get(attempt.outcome or "", ""),
                    detail_labels.get(attempt.detail or "", attempt.detail or ""),
                    attempt.sip_code or "",
                    attempt.sip_reason or "",
                    _local(attempt.ringing_at, zone),
                    _local(attempt.answer_at, zone),
                    _local(attempt.refer_at, zone),
                    attempt.refer_to or "",
                    transfer_labels.get(attempt.transfer_result or "", ""),
                    attempt.transfer_sip_code or "",
                    attempt.transfer_sip_reason or "",
                    _local(attempt.talk_ended_at, zone),
                    _local(attempt.wrap_up_ended_at, zone),
                    _local(attempt.end_at, zone),
                    _seconds(attempt.answer_at or attempt.end_at, attempt.ringing_at),
                    _seconds(
                        attempt.talk_ended_at,
                        attempt.transfer_result_at or attempt.refer_at or attempt.answer_at,
                    ),
                    _seconds(attempt.wrap_up_ended_at, attempt.talk_ended_at),
                    attempt.result or "",
                    attempt.comment or "",
                ]
            )
            yield buffer.getvalue()

    name = f"calls-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/calls/<int:attempt_id>")
@tenant_reader
def call(attempt_id: int):
    attempt = get_or_404(Attempt, attempt_id)
    lead = get_or_404(Lead, attempt.lead_id)
    operator = get_or_404(Operator, attempt.operator_id) if attempt.operator_id else None
    zone = _zone()
    start = figures.utc(attempt.invite_at)
    steps = [(attempt.invite_at, "INVITE", _("Dialed %(uri)s", uri=attempt.dialed_uri))]
    if attempt.ringing_at:
        steps.append((attempt.ringing_at, _("Ringing"), _("The customer's phone rang")))
    if attempt.answer_at:
        steps.append(
            (
                attempt.answer_at,
                _("Answer"),
                f"{attempt.sip_code or 200} {attempt.sip_reason or 'OK'}",
            )
        )
    if attempt.refer_at:
        steps.append(
            (attempt.refer_at, "REFER", _("Transfer to %(uri)s", uri=attempt.refer_to or ""))
        )
    if attempt.transfer_result_at or attempt.transfer_result:
        words = str(TRANSFER_LABELS.get(attempt.transfer_result or "", ""))
        code = attempt.transfer_sip_code
        text = f"{words}: {code} {attempt.transfer_sip_reason or ''}".strip() if code else words
        if attempt.transfer_result == "failed":
            text += " · " + transfer_reason(attempt.detail or "", code or 0)
        steps.append((attempt.transfer_result_at, _("Transfer result"), text))
    if attempt.talk_ended_at:
        steps.append(
            (attempt.talk_ended_at, _("Talk ended"), _("The operator said the call is over"))
        )
    if attempt.wrap_up_ended_at:
        steps.append(
            (attempt.wrap_up_ended_at, _("Wrap-up ended"), _("The operator finished the lead"))
        )
    if attempt.end_at:
        final = ""
        if not attempt.answer_at and attempt.sip_code:
            final = f"{attempt.sip_code} {attempt.sip_reason or ''}".strip()
        steps.append((attempt.end_at, _("End"), final))
    # In the order they happened: our SIP leg usually ends (BYE after the transfer) while the
    # operator still talks.
    steps.sort(key=lambda step: (step[0] is None, step[0] and figures.utc(step[0])))
    timeline = [
        (
            _local(moment, zone, say_zone=True),
            "" if moment is None else f"+{(figures.utc(moment) - start).total_seconds():.3f} s",
            what,
            text,
        )
        for moment, what, text in steps
    ]
    return render_template(
        "reports/call.html",
        attempt=attempt,
        lead=lead,
        operator=operator,
        timeline=timeline,
        zone_name=current_tenant().time_zone,
    )
