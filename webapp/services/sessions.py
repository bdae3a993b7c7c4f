"""Operators' on-line sessions for the per-operator report (docs/reports.md, "Time on line").

Presence lives in Redis (engine/presence.py); this keeps a record of it in
`operator_sessions`. The console opens a session when an operator goes on line and closes it
when they go off line. The engine also takes operators off line (a console quiet for the
heartbeat TTL, the failed-transfer limit) and says so with an `operator_off_line` event on
the operator's stream of events (`t:{id}:op:{op}:pops`, whose ids are times in ms); a session
whose operator is no longer in presence is closed at that event's time by `settle`, which the
console runs before each of its presence changes and the roll-up job runs every minute for
every open session. With no event (Redis lost it, or an operator removed without one), the
session closes when it is found: its end is then at most a minute late.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from engine.bus import BadEvent, parse_event
from engine.presence import Presence, decode
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, OperatorSession
from webapp.services.figures import TRANSFERRED, utc


def _open(tenant_id: int, operator_id: int) -> OperatorSession | None:
    return db.session.scalar(
        select(OperatorSession)
        .where(
            OperatorSession.tenant_id == tenant_id,
            OperatorSession.operator_id == operator_id,
            OperatorSession.off_line_at.is_(None),
        )
        .order_by(OperatorSession.on_line_at.desc())
    )


def on_line(tenant_id: int, operator_id: int, now: datetime | None = None) -> None:
    """The operator is on line: open a session unless one is open."""
    if _open(tenant_id, operator_id) is None:
        db.session.add(
            OperatorSession(
                tenant_id=tenant_id, operator_id=operator_id, on_line_at=now or datetime.now(UTC)
            )
        )
    db.session.commit()


def off_line(tenant_id: int, operator_id: int, why: str, now: datetime | None = None) -> None:
    db.session.execute(
        update(OperatorSession)
        .where(
            OperatorSession.tenant_id == tenant_id,
            OperatorSession.operator_id == operator_id,
            OperatorSession.off_line_at.is_(None),
        )
        .values(off_line_at=now or datetime.now(UTC), off_line_why=why)
    )
    db.session.commit()


def _ended(
    connection, keys, session: OperatorSession, now: datetime, ttl: float
) -> tuple[datetime, str] | None:
    """When and why an open session ended, from Redis; None while the operator is on line."""
    raw = connection.hget(keys.presence, session.operator_id)
    if raw is not None:
        seen = connection.zscore(keys.seen, session.operator_id)
        since = decode(raw).since
        last = max(seen or 0.0, since)
        if ttl and last < now.timestamp() - ttl:  # no engine swept the quiet console away
            return datetime.fromtimestamp(last + ttl, UTC), "heartbeat"
        return None
    start_ms = int(utc(session.on_line_at).timestamp() * 1000)
    for event_id, fields in connection.xrevrange(
        keys.pops(session.operator_id), min=start_ms, count=100
    ):
        try:
            payload = parse_event(fields[b"event"])
        except (BadEvent, KeyError):
            continue
        if payload["type"] == "operator_off_line":
            at = int(event_id.decode().partition("-")[0]) / 1000
            return datetime.fromtimestamp(at, UTC), str(payload.get("reason") or "engine")
    return now, "gone"


def settle(tenant_id: int, operator_id: int, now: datetime | None = None) -> None:
    """Close the operator's open session if the engine took them off line meanwhile."""
    session = _open(tenant_id, operator_id)
    connection = bus.client()
    if session is None or connection is None:
        return
    ended = _ended(
        connection,
        bus.keys(tenant_id),
        session,
        now or datetime.now(UTC),
        Presence.DEFAULT_HEARTBEAT_TTL,
    )
    if ended is not None:
        session.off_line_at, session.off_line_why = max(ended[0], utc(session.on_line_at)), ended[1]
        db.session.commit()


def close_ended_all(now: datetime | None = None) -> int:
    """Every tenant's open sessions whose operators are off line now (the job's part)."""
    connection = bus.client()
    if connection is None:
        return 0
    now = now or datetime.now(UTC)
    closed = 0
    for session in db.session.scalars(
        select(OperatorSession).where(OperatorSession.off_line_at.is_(None))
    ).all():
        ended = _ended(
            connection, bus.keys(session.tenant_id), session, now, Presence.DEFAULT_HEARTBEAT_TTL
        )
        if ended is not None:
            session.off_line_at = max(ended[0], utc(session.on_line_at))
            session.off_line_why = ended[1]
            closed += 1
    db.session.commit()
    return closed


def talk_ended(
    tenant_id: int, operator_id: int, lead_id: int | None, now: datetime | None = None
) -> None:
    """The operator says the talk is over (or finishes the lead): note it on the call just
    transferred to them, once."""
    _note(tenant_id, operator_id, lead_id, Attempt.talk_ended_at, now)


def wrap_up_ended(
    tenant_id: int, operator_id: int, lead_id: int | None, now: datetime | None = None
) -> None:
    """The operator finishes the lead (the result written): the end of their wrap-up, noted
    on the call just transferred to them, once."""
    _note(tenant_id, operator_id, lead_id, Attempt.wrap_up_ended_at, now)


def _note(
    tenant_id: int, operator_id: int, lead_id: int | None, column, now: datetime | None
) -> None:
    if lead_id is None:
        return
    latest = db.session.scalar(
        select(Attempt.id)
        .where(
            Attempt.tenant_id == tenant_id,
            Attempt.lead_id == lead_id,
            Attempt.operator_id == operator_id,
        )
        .order_by(Attempt.invite_at.desc(), Attempt.id.desc())
        .limit(1)
    )
    if latest is None:
        return
    db.session.execute(
        update(Attempt)
        .where(
            Attempt.tenant_id == tenant_id,
            Attempt.id == latest,
            Attempt.transfer_result.in_(TRANSFERRED),
            column.is_(None),
        )
        .values({column: now or datetime.now(UTC)})
    )
    db.session.commit()
