"""The staff pages: billing (all tenants a month, one tenant by month, CSV) and ops."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from flask import Response, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from webapp import bus
from webapp.extensions import db
from webapp.models import Role, Tenant
from webapp.roles import role_required
from webapp.services.engine_state import REASON_TEXT, WARNING_TEXT
from webapp.staff import bp, reports

staff_only = role_required(Role.STAFF)

#: The engine's own state (engine/dialer.py `_tick`), in words.
STATE_TEXT = {"dialing": _l("dialing"), "waiting": _l("not dialing"), "stopping": _l("stopping")}
#: The engine's registration state (engine/sip/registration.py Registration.state), in words.
REGISTRATION_TEXT = {
    "registered": _l("registered"),
    "registering": _l("registering"),
    "failed": _l("failed"),
    "unregistered": _l("not registered"),
    "none": _l("no SIP account in use"),
}


def _month() -> tuple[datetime, str]:
    """The month asked for, and an error for a month that is not one (then the current)."""
    try:
        return reports.month_start(request.args.get("month")), ""
    except ValueError:
        return reports.month_start(None), _("The month must look like 2026-11.")


@bp.get("/")
@staff_only
def index():
    return render_template("staff/index.html")


@bp.get("/billing")
@staff_only
def billing():
    start, error = _month()
    usage = reports.billing(start)
    total = reports.Usage(0, _("Total"))
    for row in usage:
        total.add(row)
    campaigns = reports.campaigns_by_tenant()
    page = render_template(
        "staff/billing.html",
        start=start,
        usage=usage,
        total=total,
        by_campaign={
            u.tenant_id: reports.named_minutes(u, campaigns.get(u.tenant_id, {})) for u in usage
        },
        error=error,
        previous=reports.previous_month(start),
        following=reports.next_month(start),
    )
    return page, 400 if error else 200


@bp.get("/billing.csv")
@staff_only
def billing_csv():
    start, error = _month()
    if error:
        abort(400, error)
    body = reports.billing_csv(start, reports.billing(start))
    name = f"autocall-billing-{start:%Y-%m}.csv"
    return Response(
        body,
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/billing/<int:tenant_id>")
@staff_only
def billing_tenant(tenant_id: int):
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        abort(404)
    months = reports.tenant_months(tenant_id, _month()[0])
    campaigns = reports.campaigns_by_tenant([tenant_id]).get(tenant_id, {})
    return render_template(
        "staff/billing_tenant.html",
        tenant=tenant,
        months=months,
        by_campaign={start: reports.named_minutes(u, campaigns) for start, u in months},
    )


@bp.get("/ops")
@staff_only
def ops():
    tenants = db.session.execute(select(Tenant.id, Tenant.name).order_by(Tenant.name)).all()
    now = datetime.now(UTC)
    hour = reports.sip_codes(now - timedelta(hours=1))
    day = reports.sip_codes(now - timedelta(days=1))
    connection = bus.client()
    prefix = current_app.extensions["autocall.config"].redis_prefix
    engines, queues, workers, hosts, redis_error = {}, [], [], [], ""
    if connection is not None:
        try:
            engines = reports.engine_views(connection, prefix, [t.id for t in tenants])
            queues = reports.queue_views(connection, prefix)
            workers = reports.worker_views(connection, prefix)
            hosts = reports.engine_hosts(connection, prefix)
        except redis.RedisError as error:
            redis_error = str(error)
    rows = [
        {
            "id": t.id,
            "name": t.name,
            "engine": engines.get(t.id),
            "hour": hour.get(t.id, reports.SipCodes()),
            "day": day.get(t.id, reports.SipCodes()),
        }
        for t in tenants
    ]
    return render_template(
        "staff/ops.html",
        rows=rows,
        queues=queues,
        workers=workers,
        hosts=hosts,
        redis_error=redis_error,
        redis_configured=connection is not None,
        REASON_TEXT=REASON_TEXT,
        WARNING_TEXT=WARNING_TEXT,
        STATE_TEXT=STATE_TEXT,
        REGISTRATION_TEXT=REGISTRATION_TEXT,
    )
