"""What the live wall shows: read from presence (Redis), the engine's live state and today's
attempts (the database). Counters follow the product's words: an attempt is one call; the
customer picked up when the PBX said 200 OK; transferred when the REFER succeeded (or the PBX
took the call without a final NOTIFY); abandoned when a customer who picked up found no free
operator; the abandon rate is abandoned / picked up."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from engine.outcomes import Detail, TransferResult
from engine.presence import decode_all
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, Lead, Operator, Tenant
from webapp.services.engine_state import engine_state


@dataclass(frozen=True)
class Counters:
    attempts: int
    picked_up: int
    transferred: int
    abandoned: int

    @property
    def abandon_rate(self) -> float | None:
        return None if not self.picked_up else round(100 * self.abandoned / self.picked_up, 1)


def start_of_today(tenant: Tenant) -> datetime:
    local = datetime.now(ZoneInfo(tenant.time_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _counted():
    """The columns of Counters, summed over the attempts a query selects."""
    transferred = Attempt.transfer_result.in_(
        (TransferResult.SUCCEEDED.value, TransferResult.UNCONFIRMED.value)
    )
    return (
        func.count(),
        func.count(Attempt.answer_at),
        func.coalesce(func.sum(case((transferred, 1), else_=0)), 0),
        func.coalesce(
            func.sum(case((Attempt.detail == Detail.NO_FREE_OPERATOR.value, 1), else_=0)), 0
        ),
    )


def today(tenant: Tenant) -> Counters:
    row = db.session.execute(
        select(*_counted()).where(
            Attempt.tenant_id == tenant.id, Attempt.invite_at >= start_of_today(tenant)
        )
    ).one()
    return Counters(*[int(value) for value in row])


def today_by_campaign(tenant: Tenant) -> dict[int, Counters]:
    """{campaign id: today's counters of its attempts} (the campaign an attempt was dialed
    in); a campaign without attempts today is left out."""
    rows = db.session.execute(
        select(Attempt.campaign_id, *_counted())
        .where(Attempt.tenant_id == tenant.id, Attempt.invite_at >= start_of_today(tenant))
        .group_by(Attempt.campaign_id)
    ).all()
    return {campaign_id: Counters(*[int(v) for v in values]) for campaign_id, *values in rows}


def wall(tenant: Tenant) -> dict:
    connection = bus.client()
    keys = bus.keys(tenant.id)
    states = decode_all(connection.hgetall(keys.presence))
    why = {int(k): v.decode() for k, v in connection.hgetall(keys.off_line_why).items()}
    operators = db.session.execute(
        select(Operator.id, Operator.name, Operator.extension)
        .where(Operator.tenant_id == tenant.id, Operator.active.is_(True))
        .order_by(Operator.name)
    ).all()
    lead_ids = {s.lead_id for s in states.values() if s.lead_id}
    names = (
        dict(
            db.session.execute(
                select(Lead.id, Lead.name).where(Lead.tenant_id == tenant.id, Lead.id.in_(lead_ids))
            ).all()
        )
        if lead_ids
        else {}
    )
    now = time.time()
    counters = today(tenant)
    return {
        "engine": asdict(engine_state(tenant.id)),
        "dialing_enabled": bool(tenant.dialing_enabled and tenant.sip_host),
        "today": {**asdict(counters), "abandon_rate": counters.abandon_rate},
        "operators": [
            {
                "id": op.id,
                "name": op.name,
                "extension": op.extension,
                "state": states[op.id].state if op.id in states else "off_line",
                "seconds": round(now - states[op.id].since) if op.id in states else None,
                "lead": names.get(states[op.id].lead_id) if op.id in states else None,
                "failed_transfers": states[op.id].failed_transfers if op.id in states else 0,
                "off_line_why": why.get(op.id) if op.id not in states else None,
            }
            for op in operators
        ],
    }
