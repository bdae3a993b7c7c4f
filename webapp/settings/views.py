from __future__ import annotations

import logging
from decimal import Decimal

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms import StringField

from webapp.bus import wake_engine
from webapp.extensions import db
from webapp.jobs import watched
from webapp.models import Operator
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.leads import LeadError, normalize_phone
from webapp.settings import bp, checks
from webapp.settings.formats import preview
from webapp.settings.forms import CallingForm, FormatsForm, SipAccountForm, TestCallForm
from webapp.tenancy import current_tenant, scoped

log = logging.getLogger(__name__)

_SIP_FIELDS = (
    "sip_host",
    "sip_port",
    "sip_transport",
    "sip_username",
    "sip_auth_username",
    "sip_outbound_proxy",
    "sip_realm",
)
_FORMAT_FIELDS = ("dial_format", "refer_format", "refer_headers")
_CALLING_FIELDS = (
    "retry_no_answer_minutes",
    "retry_unavailable_minutes",
    "retry_busy_minutes",
    "retry_technical_error_minutes",
    "max_attempts",
    "ring_timeout_seconds",
    "calling_hours_start",
    "calling_hours_end",
    "time_zone",
    "default_phone_region",
    "pacing_mode",
    "call_multiplier",
    "abandon_rate_cap_percent",
    "abandon_rate_window_days",
    "max_calls_at_once",
    "max_calls_per_second",
    "wrap_up_timeout_seconds",
    "failed_transfers_limit",
    "results",
    "hide_numbers",
    "dialing_enabled",
)


def _load(form, tenant, names) -> None:
    """Fill a form shown with GET from the tenant (POSTed forms keep what was typed)."""
    if request.method == "GET":
        for name in names:
            value = getattr(tenant, name)
            if isinstance(value, float):
                value = Decimal(str(value))
            getattr(form, name).data = value


def _store(form, tenant, names) -> None:
    for name in names:
        field = getattr(form, name)
        value = field.data
        if isinstance(value, Decimal):
            value = float(value)
        elif value is None and isinstance(field, StringField):
            value = ""  # an optional field left out of the post: empty, not NULL (was a 500)
        setattr(tenant, name, value)


@bp.get("/")
@tenant_reader
def index():
    return redirect(url_for("settings.sip"))


@bp.route("/sip", methods=["GET", "POST"])
@tenant_reader
def sip():
    tenant = current_tenant()
    form = SipAccountForm()
    _load(form, tenant, _SIP_FIELDS)
    if form.validate_on_submit():
        _store(form, tenant, _SIP_FIELDS)
        if form.clear_password.data:
            tenant.sip_password_encrypted = None
        elif form.sip_password.data:
            box = current_app.extensions["autocall.secrets"]
            tenant.sip_password_encrypted = box.encrypt(form.sip_password.data)
        db.session.commit()
        wake_engine(tenant.id, "settings")  # a running engine registers again at once
        log.info("tenant %s changed its SIP account", tenant.id)  # never the password
        flash(_("The SIP account is saved."), "success")
        return redirect(url_for("settings.sip"))
    return _sip_page(form, TestCallForm(formdata=None))


def _sip_page(form: SipAccountForm, call_form: TestCallForm):
    """The SIP account form, the two check buttons, and the check asked for in `?check=`
    (only a check of this tenant; any other id shows nothing)."""
    tenant = current_tenant()
    form.sip_password.data = ""  # a password is never sent back to the browser
    if not call_form.extension.data:
        call_form.extension.data = db.session.scalar(
            scoped(Operator)
            .where(Operator.active)
            .order_by(Operator.id)
            .with_only_columns(Operator.extension)
        )
    check = watched.find(request.args.get("check", ""), checks.KIND)
    state = watched.state(check) if check is not None else None
    result = check.return_value() if state == "done" else None
    ok, words = checks.describe(result) if result else (None, [])
    return render_template(
        "settings/sip.html",
        form=form,
        call_form=call_form,
        tenant=tenant,
        editable=can_change(),
        check=check,
        check_state=state,
        check_ok=ok,
        check_words=words,
    )


def _start_check(call: bool, *args):
    tenant = current_tenant()
    function = checks.check_call if call else checks.check_connection
    job = watched.start(
        checks.KIND, tenant.id, function, tenant.id, *args, timeout=checks.job_timeout(tenant, call)
    )
    return redirect(url_for("settings.sip", check=job.id, _anchor="check"))


def _account_missing() -> bool:
    tenant = current_tenant()
    if tenant.sip_host and tenant.sip_username:
        return False
    flash(_("Enter and save the SIP account first."), "error")
    return True


@bp.post("/sip/test-connection")
@tenant_writer
def test_connection():
    if _account_missing():
        return redirect(url_for("settings.sip"))
    return _start_check(False)


@bp.post("/sip/test-call")
@tenant_writer
def test_call():
    if _account_missing():
        return redirect(url_for("settings.sip"))
    call_form = TestCallForm()
    valid = call_form.validate_on_submit()
    number = None
    if not call_form.number.errors:
        try:
            number = normalize_phone(call_form.number.data, current_tenant().default_phone_region)
        except LeadError as error:
            call_form.number.errors.append(error.message)
    if valid and number is not None:
        return _start_check(True, number, call_form.extension.data)
    return _sip_page(SipAccountForm(formdata=None, obj=current_tenant()), call_form)


@bp.get("/checks/<job_id>")
@tenant_reader
def check_status(job_id: str):
    """What the SIP page asks for while a check runs."""
    return jsonify(state=watched.state(watched.find_or_404(job_id, checks.KIND)))


@bp.route("/formats", methods=["GET", "POST"])
@tenant_reader
def formats():
    tenant = current_tenant()
    form = FormatsForm()
    _load(form, tenant, _FORMAT_FIELDS)
    if form.validate_on_submit():
        form.refer_headers.data = (form.refer_headers.data or "").strip()
        _store(form, tenant, _FORMAT_FIELDS)
        db.session.commit()
        wake_engine(tenant.id, "settings")
        flash(_("The formats are saved."), "success")
        return redirect(url_for("settings.formats"))
    previews = {
        "dial_format": preview("dial", form.dial_format.data or "", tenant),
        "refer_format": preview("refer", form.refer_format.data or "", tenant),
        "refer_headers": preview("headers", form.refer_headers.data or "", tenant),
    }
    return render_template(
        "settings/formats.html",
        form=form,
        tenant=tenant,
        previews=previews,
        editable=can_change(),
    )


@bp.get("/formats/preview")
@tenant_reader
def formats_preview():
    """The live preview the formats page asks for while the admin types."""
    kind = request.args.get("kind", "")
    if kind not in ("dial", "refer", "headers"):
        return jsonify(error="kind must be dial, refer or headers"), 400
    ok, text = preview(kind, request.args.get("format", "")[:2000], current_tenant())
    return jsonify(ok=ok, text=text)


def _can_dial(form: CallingForm, tenant) -> bool:
    """Automatic dialing needs a SIP account to dial with."""
    if form.dialing_enabled.data and not (tenant.sip_host and tenant.sip_username):
        form.dialing_enabled.errors.append(
            _("Enter the SIP account first: dialing needs the PBX host and a username.")
        )
        return False
    return True


@bp.route("/calling", methods=["GET", "POST"])
@tenant_reader
def calling():
    tenant = current_tenant()
    form = CallingForm()
    _load(form, tenant, _CALLING_FIELDS)
    if form.validate_on_submit() and _can_dial(form, tenant):
        _store(form, tenant, _CALLING_FIELDS)
        db.session.commit()
        wake_engine(tenant.id, "settings")
        flash(_("The calling settings are saved."), "success")
        return redirect(url_for("settings.calling"))
    return render_template("settings/calling.html", form=form, tenant=tenant, editable=can_change())
