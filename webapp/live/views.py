from __future__ import annotations

from flask import jsonify, render_template, request
from flask_babel import lazy_gettext as _l

from webapp.live import bp
from webapp.roles import tenant_reader
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
        WHY_LABELS=WHY_LABELS,
    )


@bp.get("/state")
@tenant_reader
def state():
    data = wall(current_tenant(), _campaign())
    for operator in data["operators"]:
        operator["state_label"] = str(STATE_LABELS[operator["state"]])
        operator["why"] = str(WHY_LABELS.get(operator["off_line_why"] or "", ""))
    data["engine_text"] = engine_text(data)
    return jsonify(data)
