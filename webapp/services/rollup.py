"""The hourly roll-ups of attempts, kept by a job (docs/reports.md, "Roll-ups").

`roll_up(tenant_id)` adds the hours (and the days staff bill, `billing_days`, summed from
those hours) from the tenant's `rolled_until` to the last hour that
ended `SETTLE` ago and holds no attempt still in progress, at most `MAX_HOURS` a run, in one
transaction: it deletes whatever those hours hold (so a run repeated after a crash writes
the same rows) and inserts the sums of the raw attempts, with the very SQL the reports use on
raw rows (webapp/services/figures.py). On PostgreSQL a transaction-level advisory lock per
tenant makes a second scheduler's run wait and then find nothing to do.

`roll_up_reports()` is the RQ job: every tenant, every `EVERY` seconds (the cron scheduler's:
webapp/jobs/schedule.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, literal, select, text

from webapp.extensions import db
from webapp.models import Attempt, BillingDay, ReportHour, ReportRollup, Tenant
from webapp.models.report import BILLED
from webapp.services.figures import (
    HOURS,
    OPERATORS,
    day_of,
    floor_hour,
    no_jit,
    raw_select,
    utc,
)

log = logging.getLogger(__name__)

#: Seconds between runs of the job.
EVERY = 60
#: An hour is rolled up only this long after it ended: attempts are written when they end.
SETTLE = timedelta(minutes=15)
#: At most this many hours a run, so that a first roll-up of years of data is done in steps.
MAX_HOURS = 24 * 31
#: An attempt in progress for longer than this is taken as lost and no longer holds the
#: roll-up back (the engine that takes the tenant over closes it; docs/engine.md).
STUCK = timedelta(days=1)
#: First key of PostgreSQL's advisory locks of this job (the second is the tenant).
LOCK_KEY = 7007


def roll_up(tenant_id: int, now: datetime | None = None) -> int:
    """Roll up what is due for one tenant; returns the number of hours rolled up."""
    now = now or datetime.now(UTC)
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key, :tenant)"),
            {"key": LOCK_KEY, "tenant": tenant_id},
        )
    no_jit()
    state = session.get(ReportRollup, tenant_id)
    if state is None:
        first = session.scalar(
            select(func.min(Attempt.invite_at)).where(Attempt.tenant_id == tenant_id)
        )
        if first is None:
            session.rollback()
            return 0
        start = floor_hour(utc(first))
    else:
        start = utc(state.rolled_until)
    limit = floor_hour(now - SETTLE)
    oldest_open = session.scalar(
        select(func.min(Attempt.invite_at)).where(
            Attempt.tenant_id == tenant_id,
            Attempt.outcome.is_(None),
            Attempt.invite_at >= now - STUCK,
        )
    )
    if oldest_open is not None:
        limit = min(limit, floor_hour(utc(oldest_open)))
    limit = min(limit, start + timedelta(hours=MAX_HOURS))
    if limit <= start:
        session.rollback()
        return 0
    for kind in (HOURS, OPERATORS):
        table = kind.table
        keys = (
            ["hour", "campaign_id", "outcome", "detail"]
            if kind is HOURS
            else ["hour", "campaign_id", "operator_id", "detail", "transfer_sip_code"]
        )
        session.execute(
            delete(table).where(
                table.tenant_id == tenant_id, table.hour >= start, table.hour < limit
            )
        )
        session.execute(
            insert(table).from_select(
                ["tenant_id", *keys, *kind.names],
                raw_select(kind, tenant_id, start, limit, keys, with_tenant=True),
            )
        )
    _billing_days(tenant_id, start, limit)
    if state is None:
        session.add(ReportRollup(tenant_id=tenant_id, rolled_until=limit))
    else:
        state.rolled_until = limit
    session.commit()
    return int((limit - start) / timedelta(hours=1))


def _billing_days(tenant_id: int, start: datetime, limit: datetime) -> None:
    """The days [start, limit) touches, summed again from the tenant's rolled-up hours (which
    now hold every hour before `limit`); a day still running holds its rolled hours so far."""
    first = start.replace(hour=0)
    table = BillingDay
    db.session.execute(
        delete(table).where(table.tenant_id == tenant_id, table.day >= first, table.day < limit)
    )
    day = day_of(ReportHour.hour)
    db.session.execute(
        insert(table).from_select(
            ["tenant_id", "day", *BILLED],
            select(
                literal(tenant_id), day, *[func.sum(getattr(ReportHour, name)) for name in BILLED]
            )
            .where(
                ReportHour.tenant_id == tenant_id, ReportHour.hour >= first, ReportHour.hour < limit
            )
            .group_by(day),
        )
    )


def roll_up_all(now: datetime | None = None) -> int:
    rolled = 0
    for tenant_id in db.session.scalars(select(Tenant.id).order_by(Tenant.id)).all():
        try:
            rolled += roll_up(tenant_id, now)
        except Exception:  # one tenant's trouble must not stop the others'
            db.session.rollback()
            log.exception("roll-up of tenant %s failed", tenant_id)
    return rolled


def roll_up_reports() -> int:
    """The RQ job (webapp/jobs/schedule.py registers it with the cron scheduler)."""
    from webapp.jobs.queues import job_context

    with job_context():
        from webapp.services import sessions

        sessions.close_ended_all()
        return roll_up_all()
