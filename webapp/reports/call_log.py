"""The call log (docs/reports.md): its query for the page's filters and its pages, each
call's timeline, and the rows of its CSV. The views (views.py) read the request and render;
this turns attempts into what the page and the file show, with times in the tenant's zone."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import and_, or_

from webapp.extensions import db
from webapp.labels import (
    DETAIL_LABELS,
    OUTCOME_LABELS,
    TRANSFER_LABELS,
    result_label,
    transfer_reason,
)
from webapp.models import Attempt, Campaign, Lead, Operator
from webapp.services import csv_export
from webapp.services.figures import Period, utc
from webapp.tenancy import scoped

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def query(period: Period, filters: dict):
    """The period's attempts that pass the filters, newest first, each with its lead's name,
    number and CRM id, its operator's name and its campaign's name."""
    found = (
        scoped(Attempt)
        .add_columns(Lead.name, Lead.phone, Lead.external_id, Operator.name, Campaign.name)
        .join(Lead, (Lead.tenant_id == Attempt.tenant_id) & (Lead.id == Attempt.lead_id))
        .outerjoin(
            Operator,
            (Operator.tenant_id == Attempt.tenant_id) & (Operator.id == Attempt.operator_id),
        )
        .outerjoin(
            Campaign,
            (Campaign.tenant_id == Attempt.tenant_id) & (Campaign.id == Attempt.campaign_id),
        )
        .where(Attempt.invite_at >= period.start, Attempt.invite_at < period.end)
    )
    if filters.get("campaign") is not None:
        found = found.where(Attempt.campaign_id == filters["campaign"])
    if filters["outcome"]:
        found = found.where(Attempt.outcome == filters["outcome"])
    if filters["detail"]:
        found = found.where(Attempt.detail == filters["detail"])
    if filters["operator"] is not None:
        found = found.where(Attempt.operator_id == filters["operator"])
    if filters["team"] is not None:
        team_operators = (
            scoped(Operator)
            .with_only_columns(Operator.id)
            .where(Operator.team_id == filters["team"])
        )
        found = found.where(Attempt.operator_id.in_(team_operators))
    if filters["lead"] is not None:
        found = found.where(Attempt.lead_id == filters["lead"])
    if filters["sip"] is not None:
        found = found.where(
            or_(Attempt.sip_code == filters["sip"], Attempt.transfer_sip_code == filters["sip"])
        )
    return found.order_by(Attempt.invite_at.desc(), Attempt.id.desc())


def cursor(attempt: Attempt) -> str:
    """Where the page after this attempt (the last of its page) starts: its INVITE's time in
    microseconds and its id."""
    moment = utc(attempt.invite_at)
    return f"{int(moment.timestamp() * 1_000_000)}.{attempt.id}"


def after(found, text: str) -> tuple:
    """Keyset paging: (the rows of `found` after the `cursor()` in `text`, True), or
    (`found`, False) when `text` is not a cursor (the first page)."""
    first, dot, second = text.partition(".")
    if not (dot and first.isdigit() and second.isdigit() and len(text) < 40):
        return found, False
    moment = EPOCH + timedelta(microseconds=int(first))
    return found.where(
        or_(Attempt.invite_at < moment, and_(Attempt.invite_at == moment, Attempt.id < int(second)))
    ), True


def local_time(moment: datetime | None, zone: ZoneInfo, say_zone: bool = False) -> str:
    """Local time; with `say_zone`, an hour that happens twice (the autumn DST change) says
    which of the two it is (e.g. 02:30:00 CEST, then 02:30:00 CET)."""
    if moment is None:
        return ""
    local = utc(moment).astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    if say_zone and local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        text += f" {local.tzname()}"
    return text


def _seconds(later: datetime | None, earlier: datetime | None) -> str:
    if later is None or earlier is None:
        return ""
    return f"{(utc(later) - utc(earlier)).total_seconds():.1f}"


# --- one call's timeline ---------------------------------------------------------------------


def timeline(attempt: Attempt, zone: ZoneInfo) -> list[tuple[str, str, str, str]]:
    """The call's steps in the order they happened: (local time, seconds since the INVITE,
    what, words)."""
    start = utc(attempt.invite_at)
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
    steps.sort(key=lambda step: (step[0] is None, step[0] and utc(step[0])))
    return [
        (
            local_time(moment, zone, say_zone=True),
            "" if moment is None else f"+{(utc(moment) - start).total_seconds():.3f} s",
            what,
            text,
        )
        for moment, what, text in steps
    ]


# --- the CSV ---------------------------------------------------------------------------------


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
        _("Picked up"),
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
        # Last, so that a file read by column position keeps the columns it had.
        _("Campaign"),
    ]


def csv_lines(found, zone: ZoneInfo, delimiter: str) -> Iterator[str]:
    """The CSV of the attempts `query()` found (read as they are written), a line at a time:
    UTF-8's BOM and the columns first; every cell through services/csv_export.py, so none is
    read as a formula. The words are taken in the request's language before the first line."""
    outcome_labels = {k: str(v) for k, v in OUTCOME_LABELS.items()}
    detail_labels = {k: str(v) for k, v in DETAIL_LABELS.items()}
    transfer_labels = {k: str(v) for k, v in TRANSFER_LABELS.items()}
    header = csv_columns()

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_export.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        yield "\ufeff" + buffer.getvalue()
        for (
            attempt,
            lead_name,
            phone,
            external_id,
            operator_name,
            campaign_name,
        ) in db.session.execute(found):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                [
                    attempt.id,
                    local_time(attempt.invite_at, zone),
                    attempt.lead_id,
                    external_id or "",
                    lead_name,
                    phone,
                    operator_name or "",
                    outcome_labels.get(attempt.outcome or "", ""),
                    detail_labels.get(attempt.detail or "", attempt.detail or ""),
                    attempt.sip_code or "",
                    attempt.sip_reason or "",
                    local_time(attempt.ringing_at, zone),
                    local_time(attempt.answer_at, zone),
                    local_time(attempt.refer_at, zone),
                    attempt.refer_to or "",
                    transfer_labels.get(attempt.transfer_result or "", ""),
                    attempt.transfer_sip_code or "",
                    attempt.transfer_sip_reason or "",
                    local_time(attempt.talk_ended_at, zone),
                    local_time(attempt.wrap_up_ended_at, zone),
                    local_time(attempt.end_at, zone),
                    _seconds(attempt.answer_at or attempt.end_at, attempt.ringing_at),
                    _seconds(
                        attempt.talk_ended_at,
                        attempt.transfer_result_at or attempt.refer_at or attempt.answer_at,
                    ),
                    _seconds(attempt.wrap_up_ended_at, attempt.talk_ended_at),
                    result_label(attempt.result),
                    attempt.comment or "",
                    campaign_name or "",
                ]
            )
            yield buffer.getvalue()

    return lines()
