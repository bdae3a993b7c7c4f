from __future__ import annotations

from flask import jsonify, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from webapp.live import bp
from webapp.roles import tenant_reader
from webapp.services.live import wall
from webapp.tenancy import current_tenant

STATE_LABELS = {
    "off_line": _l("off line"),
    "free": _l("free"),
    "transferring": _l("call coming"),
    "busy": _l("with a customer"),
    "wrap_up": _l("wrap-up"),
}
WHY_LABELS = {"failed_transfers": _l("taken off line: transfers to their phone failed")}


def engine_text(data: dict) -> str:
    """Whether and why the engine dials, in the reader's language."""
    engine = data["engine"]
    if not data["dialing_enabled"]:
        return _("Automatic dialing is off.")
    if not engine["running"]:
        return _("Automatic dialing is on; the engine is starting.")
    if engine["dialing"]:
        return _("Dialing: %(count)s calls in progress.", count=engine["in_flight"])
    detail = f" ({engine['detail']})" if engine["detail"] else ""
    return f"{_('Not dialing:')} {engine['reason']}{detail}"


@bp.get("/")
@tenant_reader
def index():
    data = wall(current_tenant())
    return render_template("live/index.html", wall=data, engine_text=engine_text(data),
                           STATE_LABELS=STATE_LABELS, WHY_LABELS=WHY_LABELS)  # fmt: skip


@bp.get("/state")
@tenant_reader
def state():
    data = wall(current_tenant())
    for operator in data["operators"]:
        operator["state_label"] = str(STATE_LABELS[operator["state"]])
        operator["why"] = str(WHY_LABELS.get(operator["off_line_why"] or "", ""))
    data["engine_text"] = engine_text(data)
    return jsonify(data)
