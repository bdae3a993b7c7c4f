"""A lead and an attempt as JSON: what the REST API answers (webapp/api/leads.py) and what a
webhook posts (the attempt, webapp/webhooks/delivery.py). One definition, so that a CRM reads
the same fields from both; docs/portal.md documents them. Times are RFC 3339 in UTC, null
when they did not happen. Both name their campaign the way a CRM names it when it sends a
lead: `"campaign": {"id": 3, "key": "tv-offer"}`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Attempt, Campaign, Lead
from webapp.models.api import as_utc


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC."""
    value = as_utc(value)
    return value.astimezone(UTC).isoformat() if value is not None else None


def campaign_json(campaign_id: int | None) -> dict | None:
    """{"id", "key"} of a campaign (null for an object not yet stored). The session's
    identity map keeps each campaign it read: a page of leads costs a query per campaign."""
    if campaign_id is None:
        return None
    campaign = db.session.get(Campaign, campaign_id)
    return {"id": campaign.id, "key": campaign.key} if campaign is not None else None


def latest_results(leads: list[Lead]) -> dict[int, Attempt]:
    """The attempt with each lead's latest operator's result (Finish pressed), by lead id:
    one query for a page of leads."""
    ids = [lead.id for lead in leads if lead.id is not None]
    if not ids:
        return {}
    latest: dict[int, Attempt] = {}
    for attempt in db.session.scalars(
        select(Attempt)
        .where(
            Attempt.tenant_id == leads[0].tenant_id,
            Attempt.lead_id.in_(ids),
            Attempt.result_at.is_not(None),
        )
        .order_by(Attempt.result_at, Attempt.id)
    ):
        latest[attempt.lead_id] = attempt
    return latest


def result_json(attempt: Attempt) -> dict:
    """The operator's record on an attempt, by the attempt's own names."""
    return {
        "result": attempt.result,
        "comment": attempt.comment,
        "call_back_at": iso(attempt.call_back_at),
        "result_action": attempt.result_action,
        "result_at": iso(attempt.result_at),
    }


def lead_json(lead: Lead, results: dict[int, Attempt] | None = None) -> dict:
    """`results`: `latest_results` of a page of leads that holds this one (else it is read)."""
    if results is None:
        results = latest_results([lead])
    last = results.get(lead.id) if lead.id is not None else None
    return {
        "id": lead.id,
        "campaign": campaign_json(lead.campaign_id),
        "phone": lead.phone,
        "name": lead.name,
        "external_id": lead.external_id,
        "card": lead.card,
        "priority": lead.priority,
        "time_zone": lead.time_zone,
        "status": lead.status,
        "attempts": lead.attempts,
        "last_outcome": lead.last_outcome,
        "next_attempt_at": iso(lead.next_attempt_at),
        "call_at": iso(lead.callback_at),
        "created_at": iso(lead.created_at),
        # Preview dialing: why an operator last skipped the lead, and when (null: never).
        "last_skip": (
            {"reason": lead.skip_reason, "at": iso(lead.skipped_at)} if lead.skip_reason else None
        ),
        # The operator's latest result, comment and call-back time (null: none yet).
        "last_result": (
            {"attempt_id": last.id, "operator_id": last.operator_id, **result_json(last)}
            if last is not None
            else None
        ),
    }


def attempt_json(attempt: Attempt) -> dict:
    return {
        "id": attempt.id,
        "lead_id": attempt.lead_id,
        "campaign": campaign_json(attempt.campaign_id),
        "operator_id": attempt.operator_id,
        "dialed_uri": attempt.dialed_uri,
        "outcome": attempt.outcome,
        "detail": attempt.detail,
        "sip_code": attempt.sip_code,
        "sip_reason": attempt.sip_reason,
        "invite_at": iso(attempt.invite_at),
        "ringing_at": iso(attempt.ringing_at),
        "answer_at": iso(attempt.answer_at),
        "refer_at": iso(attempt.refer_at),
        "refer_to": attempt.refer_to,
        "transfer_result": attempt.transfer_result,
        "transfer_result_at": iso(attempt.transfer_result_at),
        "transfer_sip_code": attempt.transfer_sip_code,
        "transfer_sip_reason": attempt.transfer_sip_reason,
        "end_at": iso(attempt.end_at),
        **result_json(attempt),
    }
