"""The operator console's side of presence and leads: going on and off line, heartbeats,
the lead an operator is busy with, and finishing it. The console's views pass the signed-in
user, their operator record or the lead; nothing here reads the request or its tenant."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

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
) -> None:
    """The operator is done with the lead: the result and comment go on its attempt (the one
    just transferred to them), "call back at" makes the lead due again then (the engine offers
    it to this operator first), the result's action acts on the lead and the CRM hears of it
    (webapp/services/results.py), and the operator is free again."""
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
            lead.next_attempt_at = call_back_at.astimezone(UTC)
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
