"""The operator console's side of presence and leads: going on and off line, heartbeats,
the lead an operator is busy with, and finishing it. The console's views pass the signed-in
user, their operator record or the lead; nothing here reads the request or its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from engine.presence import PREVIEWING, OperatorState, decode
from engine.preview import choice_text
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead, LeadStatus, Operator, User
from webapp.services import results


def operator_of(user: User) -> Operator | None:
    """The user's operator record (active ones only)."""
    return db.session.scalar(
        select(Operator).where(
            Operator.tenant_id == user.tenant_id,
            Operator.user_id == user.id,
            Operator.active.is_(True),
        )
    )


def state_of(operator: Operator) -> OperatorState | None:
    """None: off line."""
    raw = bus.client().hget(bus.keys(operator.tenant_id).presence, operator.id)
    return decode(raw) if raw else None


def go_on_line(operator: Operator) -> None:
    bus.presence(operator.tenant_id).go_on_line(operator.id)


def go_off_line(operator: Operator) -> None:
    """Off line for a break or the end of the shift (webapp/services/breaks.py): kept as
    the why, so that no console of theirs (another tab) puts them back on line by itself,
    and each hears it on their stream of events."""
    bus.presence(operator.tenant_id).take_off_line(operator.id, "break")


def heartbeat(operator: Operator, wants_on_line: bool = False) -> bool:
    """The console is alive. An operator whose presence expired while the page was away
    (network lost, laptop asleep) and who still wants to be on line comes back on line;
    one taken off line (failed transfers, a break, a supervisor) does not. False: off line."""
    presence = bus.presence(operator.tenant_id)
    if presence.heartbeat(operator.id):
        return True
    taken_off = bus.client().hexists(bus.keys(operator.tenant_id).off_line_why, operator.id)
    if wants_on_line and not taken_off:
        presence.go_on_line(operator.id)
        return True
    return False


def previous_attempts(lead: Lead, limit: int = 20) -> list[Attempt]:
    return list(
        db.session.scalars(
            select(Attempt)
            .where(Attempt.tenant_id == lead.tenant_id, Attempt.lead_id == lead.id)
            .order_by(Attempt.invite_at.desc())
            .limit(limit)
        )
    )


def finish(
    operator: Operator,
    lead: Lead | None,
    call_back_at: datetime | None,
    result: str | None = None,
    comment: str | None = None,
    myself: bool = False,
) -> None:
    """The operator is done with the lead: the result and comment go on its attempt (the one
    just transferred to them), "call back at" promises the customer a callback then (dialed
    before new leads and retries, whatever its attempts; the engine offers it to this
    operator first), "call back myself" (`myself`) makes it wait for this operator until
    the campaign's grace period is over, the result's action acts on the lead and the CRM
    hears of it (webapp/services/results.py), and the operator is free again."""
    if lead is not None:
        attempt = db.session.scalar(
            select(Attempt)
            .where(Attempt.tenant_id == lead.tenant_id, Attempt.lead_id == lead.id)
            .order_by(Attempt.invite_at.desc(), Attempt.id.desc())
            .limit(1)
        )
        if attempt is not None and attempt.operator_id not in (None, operator.id):
            attempt = None
        if call_back_at is not None:
            lead.status = LeadStatus.RETRY.value
            lead.next_attempt_at = lead.callback_at = call_back_at.astimezone(UTC)
            lead.callback_operator_id = operator.id if myself else None
            lead.last_operator_id = operator.id
        recorded = results.record(operator, lead, attempt, result, comment, call_back_at)
        db.session.commit()
        results.announce(recorded)
    bus.presence(operator.tenant_id).finish(operator.id)


def preview_countdown(operator: Operator, state: OperatorState | None, lead: Lead) -> float | None:
    """Preview dialing: when (epoch seconds) the lead the operator previews is dialed by
    itself (None: no countdown, or not previewing)."""
    if state is None or state.state != PREVIEWING:
        return None
    seconds = db.session.scalar(
        select(Campaign.preview_countdown_seconds).where(
            Campaign.tenant_id == operator.tenant_id, Campaign.id == lead.campaign_id
        )
    )
    return state.since + seconds if seconds else None


def choose(operator: Operator, lead_id: int, choice: str, reason: str = "") -> bool:
    """Preview dialing: the operator pressed Call, or Skip with a reason (engine/preview.py
    SKIP_REASONS), on the lead they preview; the engine dials it, or puts it back. False:
    they preview no such lead (any more); ValueError: not a choice."""
    text = choice_text(choice, reason)
    return bool(bus.presence(operator.tenant_id).choose(operator.id, lead_id, text))


@dataclass(frozen=True)
class Callback:
    """A callback of the operator's, as their console lists it."""

    lead: Lead
    at: datetime
    personal: bool
    result: str | None
    comment: str | None


def callbacks_today(operator: Operator, time_zone: str) -> list[Callback]:
    """The operator's callbacks still to make today (in `time_zone`, the tenant's), the
    earliest first: their personal ones, and those they scheduled for anyone; each with the
    result and comment of the lead's last attempt that has one."""
    zone = ZoneInfo(time_zone)
    today = datetime.now(zone).date()
    start = datetime.combine(today, time(0), zone).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), time(0), zone).astimezone(UTC)
    leads = db.session.scalars(
        select(Lead)
        .where(
            Lead.tenant_id == operator.tenant_id,
            Lead.callback_at >= start,
            Lead.callback_at < end,
            Lead.status.in_((LeadStatus.NEW.value, LeadStatus.RETRY.value)),
            or_(
                Lead.callback_operator_id == operator.id,
                and_(Lead.callback_operator_id.is_(None), Lead.last_operator_id == operator.id),
            ),
        )
        .order_by(Lead.callback_at, Lead.id)
        .limit(200)
    ).all()
    noted: dict[int, Attempt] = {}
    if leads:
        for attempt in db.session.scalars(
            select(Attempt)
            .where(
                Attempt.tenant_id == operator.tenant_id,
                Attempt.lead_id.in_([lead.id for lead in leads]),
                or_(Attempt.result.is_not(None), Attempt.comment.is_not(None)),
            )
            .order_by(Attempt.invite_at, Attempt.id)
        ):
            noted[attempt.lead_id] = attempt  # the newest last
    return [
        Callback(
            lead,
            lead.callback_at.replace(tzinfo=lead.callback_at.tzinfo or UTC),
            lead.callback_operator_id == operator.id,
            noted[lead.id].result if lead.id in noted else None,
            noted[lead.id].comment if lead.id in noted else None,
        )
        for lead in leads
        if lead.callback_at is not None
    ]
