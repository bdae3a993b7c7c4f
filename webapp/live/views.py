from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from webapp.extensions import db
from webapp.labels import break_label
from webapp.live import bp
from webapp.models import Operator, Role
from webapp.roles import role_required, tenant_reader
from webapp.services import breaks
from webapp.services.campaigns import campaigns_of
from webapp.services.engine_state import EngineState, describe
from webapp.services.live import wall
from webapp.tenancy import current_tenant

STATE_LABELS = {
    "off_line": _l("off line"),
    "free": _l("free"),
    "previewing": _l("previewing a lead"),
    "transferring": _l("call coming"),
    "busy": _l("with a customer"),
    "wrap_up": _l("wrap-up"),
}
WHY_LABELS = {"failed_transfers": _l("taken off line: transfers to their phone failed")}
TAKEN_OFF_LABEL = _l("taken off line by a supervisor")


def why_text(operator: dict) -> str:
    """Why an operator is off line: the reason of their break (and whether a supervisor
    took them off), else the engine's why."""
    if operator["break_reason"]:
        reason = break_label(operator["break_reason"])
        return f"{reason} ({TAKEN_OFF_LABEL})" if operator["taken_off"] else reason
    return str(WHY_LABELS.get(operator["off_line_why"] or "", ""))


def engine_text(data: dict) -> str:
    return describe(EngineState(**data["engine"]), data["dialing_enabled"])


def _campaign() -> int | None:
    """The campaign asked for (`campaign`: its id), None for all of them. An id that is not
    one of the tenant's campaigns is kept, and shows nothing."""
    value = request.args.get("campaign", "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


@bp.get("/")
@tenant_reader
def index():
    tenant = current_tenant()
    campaign = _campaign()
    campaigns = {c.id: c for c in campaigns_of(tenant)}
    data = wall(tenant, campaign)
    return render_template(
        "live/index.html",
        wall=data,
        engine_text=engine_text(data),
        campaigns=campaigns,
        campaign=campaign,
        campaign_unknown=campaign is not None and campaign not in campaigns,
        STATE_LABELS=STATE_LABELS,
        why_text=why_text,
        reasons=[(reason, break_label(reason)) for reason in breaks.reasons(tenant)],
    )


@bp.get("/state")
@tenant_reader
def state():
    data = wall(current_tenant(), _campaign())
    for operator in data["operators"]:
        operator["state_label"] = str(STATE_LABELS[operator["state"]])
        operator["why"] = why_text(operator)
    data["engine_text"] = engine_text(data)
    return jsonify(data)


@bp.post("/operators/<int:operator_id>/off-line")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def take_off_line(operator_id: int):
    """A supervisor or admin takes an operator off line (the ghost who left their browser
    open), for a reason of the company's list that the operator sees when they come back."""
    tenant = current_tenant()
    name = db.session.scalar(
        select(Operator.name).where(Operator.tenant_id == tenant.id, Operator.id == operator_id)
    )
    if name is None:
        abort(404)
    reason = request.form.get("reason", "")
    if reason not in breaks.reasons(tenant):
        flash(_("Choose the reason %(name)s is taken off line for.", name=name), "error")
    elif breaks.take_off_line(tenant, operator_id, reason, current_user):
        flash(
            _("%(name)s is off line: %(reason)s.", name=name, reason=break_label(reason)),
            "success",
        )
    else:
        flash(_("%(name)s was not on line.", name=name), "error")
    return redirect(url_for("live.index", campaign=request.args.get("campaign")))
