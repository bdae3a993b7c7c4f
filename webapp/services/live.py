"""What the live wall shows: read from presence (Redis), the engine's live state and today's
attempts (the database). Counters follow the product's words: an attempt is one call; the
customer picked up when the PBX said 200 OK; transferred when the REFER succeeded (or the PBX
took the call without a final NOTIFY); abandoned when a customer who picked up found no free
operator; the abandon rate is abandoned / picked up. The wall shows every campaign, or one:
its attempts and the operators who work it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from engine.outcomes import ABANDONED, TransferResult
from engine.presence import decode_all
from webapp import bus
from webapp.extensions import db
from webapp.models import Attempt, Campaign, CampaignMember, CampaignState, Lead, Operator, Tenant
from webapp.services import breaks
from webapp.services.engine_state import engine_state
from webapp.services.sip_accounts import dialing_on


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
            func.sum(case((Attempt.detail.in_([d.value for d in ABANDONED]), 1), else_=0)), 0
        ),
    )


def today(tenant: Tenant, campaign_id: int | None = None) -> Counters:
    """Today's counters of every campaign, or of one (an id that is not one of the tenant's
    campaigns counts nothing)."""
    query = select(*_counted()).where(
        Attempt.tenant_id == tenant.id, Attempt.invite_at >= start_of_today(tenant)
    )
    if campaign_id is not None:
        query = query.where(Attempt.campaign_id == campaign_id)
    row = db.session.execute(query).one()
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


def campaign_operators(tenant: Tenant, campaign_id: int) -> set[int] | None:
    """The operators who work a campaign: its members, directly or through their team;
    None for a campaign without members, which every operator works. An id that is not
    one of the tenant's campaigns has nobody."""
    known = db.session.scalar(
        select(Campaign.id).where(Campaign.tenant_id == tenant.id, Campaign.id == campaign_id)
    )
    if known is None:
        return set()
    members = db.session.execute(
        select(CampaignMember.operator_id, CampaignMember.team_id).where(
            CampaignMember.tenant_id == tenant.id, CampaignMember.campaign_id == campaign_id
        )
    ).all()
    if not members:
        return None
    teams = {team_id for _operator_id, team_id in members if team_id is not None}
    found = {operator_id for operator_id, _team_id in members if operator_id is not None}
    if teams:
        found |= set(
            db.session.scalars(
                select(Operator.id).where(
                    Operator.tenant_id == tenant.id, Operator.team_id.in_(teams)
                )
            )
        )
    return found


def _by_campaign(tenant: Tenant) -> list[dict]:
    """Today's counters of each campaign that is not archived or had attempts today, the
    default first; empty for a tenant with one campaign."""
    campaigns = db.session.execute(
        select(Campaign.id, Campaign.name, Campaign.state)
        .where(Campaign.tenant_id == tenant.id)
        .order_by(Campaign.is_default.desc(), Campaign.name)
    ).all()
    if len(campaigns) < 2:
        return []
    counted = today_by_campaign(tenant)
    rows = []
    for campaign_id, name, state in campaigns:
        counters = counted.get(campaign_id)
        if counters is None and state == CampaignState.ARCHIVED.value:
            continue
        counters = counters or Counters(0, 0, 0, 0)
        rows.append(
            {
                "id": campaign_id,
                "name": name,
                **asdict(counters),
                "abandon_rate": counters.abandon_rate,
            }
        )
    return rows


def wall(tenant: Tenant, campaign_id: int | None = None) -> dict:
    """What the wall shows: of every campaign (with each campaign's counters beside), or of
    one campaign (its counters and the operators who work it)."""
    connection = bus.client()
    keys = bus.keys(tenant.id)
    states = decode_all(connection.hgetall(keys.presence))
    why = {int(k): v.decode() for k, v in connection.hgetall(keys.off_line_why).items()}
    query = (
        select(Operator.id, Operator.name, Operator.extension)
        .where(Operator.tenant_id == tenant.id, Operator.active.is_(True))
        .order_by(Operator.name)
    )
    if campaign_id is not None:
        working = campaign_operators(tenant, campaign_id)
        if working is not None:
            query = query.where(Operator.id.in_(working))
    operators = db.session.execute(query).all()
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
    away = breaks.open_breaks(tenant.id)
    now = time.time()
    counters = today(tenant, campaign_id)
    return {
        "engine": asdict(engine_state(tenant.id)),
        "dialing_enabled": dialing_on(tenant),
        "campaign": campaign_id,
        "today": {**asdict(counters), "abandon_rate": counters.abandon_rate},
        "by_campaign": _by_campaign(tenant) if campaign_id is None else [],
        "operators": [
            {
                "id": op.id,
                "name": op.name,
                "extension": op.extension,
                "state": states[op.id].state if op.id in states else "off_line",
                "seconds": round(now - states[op.id].since)
                if op.id in states
                else (round(now - away[op.id].started_at.timestamp()) if op.id in away else None),
                "lead": names.get(states[op.id].lead_id) if op.id in states else None,
                "failed_transfers": states[op.id].failed_transfers if op.id in states else 0,
                "off_line_why": why.get(op.id) if op.id not in states else None,
                # Off line for a reason (webapp/services/breaks.py): which, and whether a
                # supervisor or admin took them off line.
                "break_reason": away[op.id].reason
                if op.id in away and op.id not in states
                else None,
                "taken_off": op.id in away
                and op.id not in states
                and away[op.id].taken_by_id is not None,
            }
            for op in operators
        ],
    }
