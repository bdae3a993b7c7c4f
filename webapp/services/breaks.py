"""Operators' breaks (docs/portal.md, "Breaks"): why an operator is off line, and for how
long.

Going off line in the console asks for a reason from the company's list: the default ones
(`DEFAULT_REASONS`, stored as keys and shown in the viewer's language by webapp/labels.py),
the admin's own (the tenant's `break_reasons`, stored and shown as written), and "End of
shift". A reason other than End of shift starts a break, which lasts until the operator is
back on line; End of shift ends the operator's session and starts no break (its row is a
moment, kept so the live wall and the console can say so). A break counts for at most
`LONGEST` (one longer is an operator who went home without saying so).

A supervisor or admin may take an operator off line from the live wall (the ghost who left
their browser open): presence forgets them at once (the engine gives them no more calls, and
their console's heartbeats cannot put them back), their session ends, and a break with the
reason chosen starts, which their console shows when they come back.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from webapp import bus
from webapp.extensions import db
from webapp.models import OperatorBreak, OperatorSession, Tenant, User
from webapp.services import sessions
from webapp.services.figures import local_midnight, utc

LUNCH, TRAINING, MEETING, END_OF_SHIFT = "lunch", "training", "meeting", "end_of_shift"
DEFAULT_REASONS = (LUNCH, TRAINING, MEETING)
#: Why presence's `off_line_why` holds an operator a supervisor took off line.
TAKEN_OFF = "supervisor"
#: The company's own reasons: at most this many, each at most this long.
MAX_OWN = 20
MAX_LENGTH = 64
#: The longest a break counts (an operator's full-day training fits).
LONGEST = timedelta(hours=8)


def own_reasons(tenant: Tenant) -> list[str]:
    """The admin's own reasons, one a line in `tenant.break_reasons`."""
    return [line.strip() for line in (tenant.break_reasons or "").splitlines() if line.strip()]


def reasons(tenant: Tenant) -> list[str]:
    """Every reason an operator may choose, in the order the console offers them."""
    return [*DEFAULT_REASONS, *own_reasons(tenant), END_OF_SHIFT]


def is_default(reason: str) -> bool:
    return reason in DEFAULT_REASONS or reason == END_OF_SHIFT


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _latest_end(started: datetime) -> datetime:
    """A break is counted no further than this."""
    return utc(started) + LONGEST


def _end_open(tenant: Tenant, operator_id: int, now: datetime) -> None:
    for open_break in db.session.scalars(
        select(OperatorBreak).where(
            OperatorBreak.tenant_id == tenant.id,
            OperatorBreak.operator_id == operator_id,
            OperatorBreak.ended_at.is_(None),
        )
    ):
        open_break.ended_at = max(
            utc(open_break.started_at), min(now, _latest_end(open_break.started_at))
        )


def start(
    tenant: Tenant,
    operator_id: int,
    reason: str,
    now: datetime | None = None,
    taken_by: User | None = None,
) -> OperatorBreak:
    """The operator went off line for `reason` (one of `reasons(tenant)`, unchecked here):
    an open break of theirs ends, their session ends, and this one starts."""
    now = _now(now)
    _end_open(tenant, operator_id, now)
    sessions.off_line(
        tenant.id,
        operator_id,
        TAKEN_OFF
        if taken_by is not None
        else ("end_of_shift" if reason == END_OF_SHIFT else "break"),
        now,
    )
    row = OperatorBreak(
        tenant_id=tenant.id,
        operator_id=operator_id,
        reason=reason,
        started_at=now,
        ended_at=now if reason == END_OF_SHIFT else None,
        taken_by_id=taken_by.id if taken_by is not None else None,
    )
    db.session.add(row)
    db.session.commit()
    return row


def back_on_line(tenant: Tenant, operator_id: int, now: datetime | None = None) -> None:
    """The operator is on line again: their break, if any, ends."""
    _end_open(tenant, operator_id, _now(now))
    db.session.commit()


def take_off_line(
    tenant: Tenant, operator_id: int, reason: str, by: User, now: datetime | None = None
) -> bool:
    """A supervisor or admin takes an operator off line, for `reason`. False: they were not
    on line (nothing is written)."""
    presence = bus.presence(tenant.id)
    if not presence.client.hexists(presence.keys.presence, operator_id):
        return False
    # The break first: their console asks for its reason as soon as it hears of it.
    start(tenant, operator_id, reason, now, taken_by=by)
    presence.take_off_line(operator_id, TAKEN_OFF)
    return True


def open_breaks(tenant_id: int) -> dict[int, OperatorBreak]:
    """{operator id: their break under way, or the End of shift that last took them off},
    of the last day, for operators not on line since."""
    rows = db.session.scalars(
        select(OperatorBreak)
        .where(
            OperatorBreak.tenant_id == tenant_id,
            or_(OperatorBreak.ended_at.is_(None), OperatorBreak.reason == END_OF_SHIFT),
            OperatorBreak.started_at > datetime.now(UTC) - timedelta(days=1),
        )
        .order_by(OperatorBreak.started_at)
    )
    found = {row.operator_id: row for row in rows}  # the latest of each operator wins
    if not found:
        return found
    last_on_line = dict(
        db.session.execute(
            select(OperatorSession.operator_id, func.max(OperatorSession.on_line_at))
            .where(
                OperatorSession.tenant_id == tenant_id,
                OperatorSession.operator_id.in_(found),
            )
            .group_by(OperatorSession.operator_id)
        ).all()
    )
    return {
        operator_id: row
        for operator_id, row in found.items()
        if operator_id not in last_on_line or utc(last_on_line[operator_id]) <= utc(row.started_at)
    }


def latest(tenant_id: int, operator_id: int) -> OperatorBreak | None:
    """The operator's latest break (or End of shift) if they have not been on line since."""
    row = db.session.scalar(
        select(OperatorBreak)
        .where(OperatorBreak.tenant_id == tenant_id, OperatorBreak.operator_id == operator_id)
        .order_by(OperatorBreak.started_at.desc(), OperatorBreak.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    since = db.session.scalar(
        select(OperatorSession.id)
        .where(
            OperatorSession.tenant_id == tenant_id,
            OperatorSession.operator_id == operator_id,
            OperatorSession.on_line_at > row.started_at,
        )
        .limit(1)
    )
    return row if since is None else None


def taken_by_email(row: OperatorBreak) -> str | None:
    if row.taken_by_id is None:
        return None
    user = db.session.get(User, row.taken_by_id)
    return user.email if user is not None else ""


def time_by_reason(
    tenant: Tenant, start_at: datetime, end_at: datetime, now: datetime | None = None
) -> dict[tuple[int, date], dict[str, float]]:
    """{(operator id, local day): {reason: seconds}} of the breaks inside [start_at, end_at),
    split at local midnights; a break under way counts until now (and no more than
    `LONGEST`)."""
    now = _now(now)
    zone = ZoneInfo(tenant.time_zone)
    rows = db.session.execute(
        select(
            OperatorBreak.operator_id,
            OperatorBreak.reason,
            OperatorBreak.started_at,
            OperatorBreak.ended_at,
        ).where(
            OperatorBreak.tenant_id == tenant.id,
            OperatorBreak.reason != END_OF_SHIFT,
            OperatorBreak.started_at < end_at,
            or_(OperatorBreak.ended_at.is_(None), OperatorBreak.ended_at > start_at),
        )
    )
    out: dict[tuple[int, date], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for operator_id, reason, started, ended in rows:
        begin = max(utc(started), start_at)
        finish = min(utc(ended) if ended is not None else min(now, _latest_end(started)), end_at)
        while begin < finish:
            day = begin.astimezone(zone).date()
            until = min(finish, local_midnight(day + timedelta(days=1), zone))
            out[(operator_id, day)][reason] += (until - begin).total_seconds()
            begin = until
    return {key: dict(value) for key, value in out.items()}
