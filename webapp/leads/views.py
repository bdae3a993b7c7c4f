from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask import render_template, request
from flask_babel import lazy_gettext as _l

from webapp.extensions import db
from webapp.labels import OUTCOME_LABELS
from webapp.leads import bp
from webapp.models import Attempt, Campaign, Lead, LeadStatus, Operator
from webapp.roles import can_change, tenant_reader
from webapp.services.campaigns import campaigns_of
from webapp.tenancy import current_tenant, get_or_404, scoped

PAGE_SIZE = 50
_PHONE = re.compile(r"\+?[0-9]{2,15}\Z")

STATUS_LABELS = {
    LeadStatus.NEW.value: _l("new"),
    LeadStatus.DIALING.value: _l("dialing"),
    LeadStatus.RETRY.value: _l("waiting for retry"),
    LeadStatus.REACHED.value: _l("reached"),
    LeadStatus.EXHAUSTED.value: _l("attempts exhausted"),
    LeadStatus.CANCELLED.value: _l("cancelled"),
    LeadStatus.DO_NOT_CALL.value: _l("on the do-not-call list"),
}
DUE_LABELS = {"now": _l("due now"), "later": _l("due later")}
#: The callbacks filter: every scheduled callback, or the personal ones only.
CALLBACK_LABELS = {"scheduled": _l("scheduled callbacks"), "personal": _l("personal callbacks")}


@bp.app_context_processor
def labels() -> dict:
    """The lead's own words; an outcome's are every page's (webapp/labels.py)."""
    return {
        "STATUS_LABELS": STATUS_LABELS,
        "DUE_LABELS": DUE_LABELS,
        "CALLBACK_LABELS": CALLBACK_LABELS,
    }


def _due(due: str):
    """The next-attempt filter: leads the engine may dial now, or later."""
    now = datetime.now(UTC)
    waiting = Lead.status.in_((LeadStatus.NEW.value, LeadStatus.RETRY.value))
    if due == "now":
        return waiting & (Lead.next_attempt_at.is_(None) | (Lead.next_attempt_at <= now))
    return waiting & (Lead.next_attempt_at > now)


def _search(query, text: str):
    """A number (digits, maybe '+', spaces or dashes) matches phones that start with it;
    a CRM id finds its lead; other text matches the name in part.

    The CRM id is looked up first, on its unique index, rather than OR-ed with the name:
    an OR with a part-of-name match cannot use that index, so every CRM id search read
    all the tenant's leads (bench/pages.py)."""
    compact = re.sub(r"[\s\-().]", "", text)
    if _PHONE.match(compact):
        return query.where(Lead.phone.startswith("+" + compact.lstrip("+"), autoescape=True))
    known = db.session.scalar(
        scoped(Lead).with_only_columns(Lead.id).where(Lead.external_id == text)
    )
    if known is not None:
        return query.where(Lead.id == known)
    return query.where(Lead.name.icontains(text, autoescape=True))


@bp.get("/")
@tenant_reader
def index():
    """Newest first, paged by id (keyset): every page costs the same however deep it is."""
    status = request.args.get("status", "")
    outcome = request.args.get("outcome", "")
    due = request.args.get("due", "")
    callback = request.args.get("callback", "")
    text = request.args.get("q", "").strip()[:100]
    before = request.args.get("before", type=int)
    campaigns = {campaign.id: campaign for campaign in campaigns_of(current_tenant())}
    campaign = request.args.get("campaign", type=int)

    query = scoped(Lead)
    if campaign in campaigns:
        query = query.where(Lead.campaign_id == campaign)
    else:
        campaign = None
    if status in STATUS_LABELS:
        query = query.where(Lead.status == status)
    if outcome in OUTCOME_LABELS:
        query = query.where(Lead.last_outcome == outcome)
    if due in DUE_LABELS:
        query = query.where(_due(due))
    if callback in CALLBACK_LABELS:
        query = query.where(
            Lead.callback_at.is_not(None),
            Lead.status.in_((LeadStatus.NEW.value, LeadStatus.RETRY.value)),
        )
        if callback == "personal":
            query = query.where(Lead.callback_operator_id.is_not(None))
    if text:
        query = _search(query, text)
    if before is not None:
        query = query.where(Lead.id < before)
    leads = db.session.scalars(query.order_by(Lead.id.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(leads) > PAGE_SIZE
    leads = leads[:PAGE_SIZE]
    filters = {
        "campaign": campaign or "",
        "status": status,
        "outcome": outcome,
        "due": due,
        "callback": callback if callback in CALLBACK_LABELS else "",
        "q": text,
    }
    return render_template(
        "leads/index.html",
        leads=leads,
        filters=filters,
        campaigns=campaigns,
        next_before=leads[-1].id if more else None,
        first_page=before is None,
        editable=can_change(),
    )


@bp.get("/<int:lead_id>")
@tenant_reader
def detail(lead_id: int):
    lead = get_or_404(Lead, lead_id)
    rows = db.session.execute(
        scoped(Attempt)
        .add_columns(Operator.name)
        .outerjoin(
            Operator,
            (Operator.id == Attempt.operator_id) & (Operator.tenant_id == Attempt.tenant_id),
        )
        .where(Attempt.lead_id == lead.id)
        .order_by(Attempt.invite_at.desc())
    ).all()
    campaign = db.session.get(Campaign, lead.campaign_id)
    callback_operator = None
    if lead.callback_operator_id is not None:
        callback_operator = db.session.scalar(
            scoped(Operator).where(Operator.id == lead.callback_operator_id)
        )
    return render_template(
        "leads/detail.html",
        lead=lead,
        attempts=rows,
        campaign=campaign,
        callback_operator=callback_operator,
        grace_ends=lead.callback_at + timedelta(minutes=campaign.callback_grace_minutes)
        if lead.callback_at is not None
        else None,
    )
