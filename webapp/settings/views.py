"""Company settings: what is the company's whatever the campaign (its time zone, its phone
region, its dialing switch), and the checks' status. Its SIP accounts are
webapp/settings/sip_accounts.py; a campaign's dialing rules are on the campaign's own pages
(webapp/campaigns/)."""

from __future__ import annotations

import logging

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.jobs import watched
from webapp.roles import can_change, tenant_reader
from webapp.services.sip_accounts import has_complete_account
from webapp.settings import bp, checks
from webapp.settings.forms import CompanyForm
from webapp.tenancy import current_tenant

log = logging.getLogger(__name__)

_COMPANY_FIELDS = ("time_zone", "default_phone_region", "dialing_enabled", "break_reasons")


@bp.get("/")
@tenant_reader
def index():
    return redirect(url_for("settings.sip"))


@bp.get("/calling")
@tenant_reader
def calling():
    """The former Calls page: its company part is the Company page now, its dialing rules
    are each campaign's (the campaign's Calling tab)."""
    return redirect(url_for("settings.company"))


def _can_dial(form: CompanyForm, tenant) -> bool:
    """Automatic dialing needs a SIP account to dial with."""
    if form.dialing_enabled.data and not has_complete_account(tenant):
        form.dialing_enabled.errors.append(
            _("Add a SIP account first: dialing needs one with the PBX host and a username.")
        )
        return False
    return True


@bp.route("/company", methods=["GET", "POST"])
@tenant_reader
def company():
    tenant = current_tenant()
    form = CompanyForm(obj=tenant if request.method == "GET" else None)
    if form.validate_on_submit() and _can_dial(form, tenant):
        for name in _COMPANY_FIELDS:
            setattr(tenant, name, getattr(form, name).data)
        db.session.commit()
        wake_engine(tenant.id, "settings")
        flash(_("The company settings are saved."), "success")
        return redirect(url_for("settings.company"))
    return render_template(
        "settings/company.html",
        form=form,
        tenant=tenant,
        has_account=has_complete_account(tenant),
        editable=can_change(),
    )


@bp.get("/checks/<job_id>")
@tenant_reader
def check_status(job_id: str):
    """What a SIP account's page asks for while a check runs."""
    return jsonify(state=watched.state(watched.find_or_404(job_id, checks.KIND)))
