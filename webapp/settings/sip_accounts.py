"""The SIP accounts pages: the tenant's accounts with the campaigns that use each, a new
account, an account's form with its checks (Test connection, Test call), its dial and REFER
formats with their live preview, and Delete (refused while a campaign uses it). Admins
change, supervisors read; another tenant's account id is a 404 (docs/portal.md,
"SIP accounts")."""

from __future__ import annotations

import logging

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from webapp.config import Config
from webapp.extensions import db
from webapp.jobs import watched
from webapp.models import Operator, SipAccount
from webapp.models.sip_account import TRANSFER_WAIT_DEFAULT
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.engine_state import describe_account, engine_state
from webapp.services.leads import LeadError, normalize_phone
from webapp.services.sip_accounts import (
    FIELDS,
    FORMAT_FIELDS,
    Password,
    SipAccountError,
    accounts_of,
    campaigns_using,
    create_account,
    delete_account,
    update_account,
)
from webapp.settings import bp, checks
from webapp.settings.formats import preview
from webapp.settings.forms import FormatsForm, SipAccountForm, TestCallForm
from webapp.tenancy import current_tenant, get_or_404, scoped

log = logging.getLogger(__name__)


def _values(form, names) -> dict:
    return {name: getattr(form, name).data for name in names}


def _password(form: SipAccountForm) -> Password:
    return Password(new=form.password.data or "", clear=bool(form.clear_password.data))


def _secrets():
    return current_app.extensions["autocall.secrets"]


@bp.get("/sip")
@tenant_reader
def sip():
    tenant = current_tenant()
    return render_template(
        "settings/sip_accounts.html",
        accounts=accounts_of(tenant),
        using=campaigns_using(tenant),
        editable=can_change(),
        engine=engine_state(tenant.id),
        describe_account=describe_account,
        firewall=_firewall(current_app.extensions["autocall.config"]),
    )


def _firewall(config: Config) -> str:
    """What a tenant's admin lets through the PBX's firewall: the deployment's public
    address and SIP port range (AUTOCALL_SIP_PUBLIC_ADDRESS, AUTOCALL_SIP_PORTS: the
    engines' own settings, engine/sip/nat.py); empty when neither is set."""
    address = str(config.sip_public_addresses)
    ports = config.sip_port_range
    span = "" if ports is None else f"{ports.first}\u2013{ports.last}"
    if ports is not None and ports.first == ports.last:
        span = str(ports.first)
    if address and span:
        return _(
            "Allow these in your PBX's firewall: address %(address)s, UDP ports %(ports)s.",
            address=address,
            ports=span,
        )
    if address:
        return _("Allow these in your PBX's firewall: address %(address)s.", address=address)
    if span:
        return _(
            "Allow these in your PBX's firewall: UDP ports %(ports)s (from this service's "
            "address).",
            ports=span,
        )
    return ""


@bp.route("/sip/new", methods=["GET", "POST"])
@tenant_writer
def new_sip_account():
    tenant = current_tenant()
    form = SipAccountForm()
    if request.method == "GET":  # on a post, left out is the model's default too
        form.transfer_wait_seconds.data = TRANSFER_WAIT_DEFAULT
    if form.validate_on_submit() and not _taken(form, None):
        try:
            account = create_account(tenant, _values(form, FIELDS), _password(form), _secrets())
        except SipAccountError as error:
            db.session.rollback()
            form.name.errors.append(error.message)
        except IntegrityError:  # a concurrent request took the name
            db.session.rollback()
            form.name.errors.append(_("Another SIP account has this name."))
        else:
            log.info("tenant %s added SIP account %s", tenant.id, account.id)  # no password
            flash(_("The SIP account %(name)s is saved.", name=account.name), "success")
            return redirect(url_for("settings.sip_account", account_id=account.id))
    form.password.data = ""
    return render_template(
        "settings/sip.html", form=form, account=None, call_form=None, editable=True
    )


def _taken(form: SipAccountForm, account_id: int | None) -> bool:
    query = scoped(SipAccount).where(SipAccount.name == (form.name.data or "").strip())
    if account_id is not None:
        query = query.where(SipAccount.id != account_id)
    if db.session.scalar(query) is not None:
        form.name.errors.append(_("Another SIP account has this name."))
        return True
    return False


@bp.route("/sip/<int:account_id>", methods=["GET", "POST"])
@tenant_reader
def sip_account(account_id: int):
    account = get_or_404(SipAccount, account_id)
    form = SipAccountForm(obj=account if request.method == "GET" else None)
    if form.validate_on_submit() and not _taken(form, account.id):
        try:
            update_account(account, _values(form, FIELDS), _password(form), _secrets())
        except SipAccountError as error:
            db.session.rollback()
            form.name.errors.append(error.message)
        except IntegrityError:
            db.session.rollback()
            form.name.errors.append(_("Another SIP account has this name."))
        else:
            log.info("tenant %s changed SIP account %s", account.tenant_id, account.id)
            flash(_("The SIP account %(name)s is saved.", name=account.name), "success")
            return redirect(url_for("settings.sip_account", account_id=account.id))
    return _account_page(account, form, TestCallForm(formdata=None))


def _account_page(account: SipAccount, form: SipAccountForm, call_form: TestCallForm):
    """The account's form, the two check buttons, and the check asked for in `?check=`
    (only a check of this tenant and this account; any other id shows nothing)."""
    form.password.data = ""  # a password is never sent back to the browser
    if not call_form.extension.data:
        call_form.extension.data = db.session.scalar(
            scoped(Operator)
            .where(Operator.active)
            .order_by(Operator.id)
            .with_only_columns(Operator.extension)
        )
    check = watched.find(request.args.get("check", ""), checks.KIND)
    if check is not None and check.args[1:2] != (account.id,):
        check = None
    state = watched.state(check) if check is not None else None
    result = check.return_value() if state == "done" else None
    ok, words = checks.describe(result) if result else (None, [])
    return render_template(
        "settings/sip.html",
        form=form,
        call_form=call_form,
        account=account,
        using=campaigns_using(current_tenant()).get(account.id, []),
        editable=can_change(),
        check=check,
        check_state=state,
        check_ok=ok,
        check_words=words,
    )


@bp.post("/sip/<int:account_id>/delete")
@tenant_writer
def delete_sip_account(account_id: int):
    account = get_or_404(SipAccount, account_id)
    name = account.name
    try:
        delete_account(account)
    except SipAccountError as error:
        flash(
            _(
                "The SIP account %(name)s is not deleted: campaigns dial through it "
                "(%(campaigns)s). Give them another account first.",
                name=name,
                campaigns=", ".join(error.campaigns),
            ),
            "error",
        )
        return redirect(url_for("settings.sip_account", account_id=account_id))
    flash(_("The SIP account %(name)s is deleted.", name=name), "success")
    return redirect(url_for("settings.sip"))


def _start_check(account: SipAccount, call: bool, *args):
    tenant = current_tenant()
    function = checks.check_call if call else checks.check_connection
    job = watched.start(
        checks.KIND,
        tenant.id,
        function,
        tenant.id,
        account.id,
        *args,
        timeout=checks.job_timeout(account, call),
    )
    return redirect(
        url_for("settings.sip_account", account_id=account.id, check=job.id, _anchor="check")
    )


def _incomplete(account: SipAccount) -> bool:
    if account.complete:
        return False
    flash(_("Enter and save the SIP account first."), "error")
    return True


@bp.post("/sip/<int:account_id>/test-connection")
@tenant_writer
def test_connection(account_id: int):
    account = get_or_404(SipAccount, account_id)
    if _incomplete(account):
        return redirect(url_for("settings.sip_account", account_id=account.id))
    return _start_check(account, False)


@bp.post("/sip/<int:account_id>/test-call")
@tenant_writer
def test_call(account_id: int):
    account = get_or_404(SipAccount, account_id)
    if _incomplete(account):
        return redirect(url_for("settings.sip_account", account_id=account.id))
    call_form = TestCallForm()
    valid = call_form.validate_on_submit()
    number = None
    if not call_form.number.errors:
        try:
            number = normalize_phone(call_form.number.data, current_tenant().default_phone_region)
        except LeadError as error:
            call_form.number.errors.append(error.message)
    if valid and number is not None:
        return _start_check(account, True, number, call_form.extension.data)
    return _account_page(account, SipAccountForm(formdata=None, obj=account), call_form)


@bp.get("/formats")
@tenant_reader
def formats():
    """The former Formats page: formats are each SIP account's now (the first one's here)."""
    accounts = accounts_of(current_tenant())
    if not accounts:
        return redirect(url_for("settings.sip"))
    return redirect(url_for("settings.sip_account_formats", account_id=accounts[0].id))


@bp.route("/sip/<int:account_id>/formats", methods=["GET", "POST"])
@tenant_reader
def sip_account_formats(account_id: int):
    account = get_or_404(SipAccount, account_id)
    region = current_tenant().default_phone_region
    form = FormatsForm(obj=account if request.method == "GET" else None)
    if form.validate_on_submit():
        form.refer_headers.data = (form.refer_headers.data or "").strip()
        update_account(account, _values(form, FORMAT_FIELDS), Password(), _secrets())
        flash(_("The formats of %(name)s are saved.", name=account.name), "success")
        return redirect(url_for("settings.sip_account_formats", account_id=account.id))
    previews = {
        "dial_format": preview("dial", form.dial_format.data or "", account, region),
        "refer_format": preview("refer", form.refer_format.data or "", account, region),
        "refer_headers": preview("headers", form.refer_headers.data or "", account, region),
    }
    return render_template(
        "settings/formats.html",
        form=form,
        account=account,
        previews=previews,
        editable=can_change(),
    )


@bp.get("/sip/<int:account_id>/formats/preview")
@tenant_reader
def formats_preview(account_id: int):
    """The live preview the formats page asks for while the admin types."""
    account = get_or_404(SipAccount, account_id)
    kind = request.args.get("kind", "")
    if kind not in ("dial", "refer", "headers"):
        return jsonify(error="kind must be dial, refer or headers"), 400
    source = request.args.get("format", "")[:2000]
    ok, text = preview(kind, source, account, current_tenant().default_phone_region)
    return jsonify(ok=ok, text=text)
