"""Settings → Webhooks: the URLs that hear of every finished attempt, and their deliveries.

Admins add, edit, delete an endpoint, send it a test event (tried at once, in the request,
within the POST's deadline: it waits behind no delivery), and show its signing secret;
supervisors read the page (never a secret). The secret is shown when the endpoint is made,
and again on an admin's request (a POST answered with a page nobody may keep): the service
must read it to sign, so it is stored encrypted rather than hashed (docs/portal.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.extensions import db
from webapp.models import WebhookDelivery, WebhookEndpoint
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.secrets import SecretError
from webapp.settings import bp
from webapp.tenancy import current_tenant_id, get_or_404, scoped
from webapp.webhooks import delivery

#: Endpoints a tenant may have.
MAX_ENDPOINTS = 5
#: Deliveries the page shows.
SHOWN = 50


def _http_url(form, field) -> None:
    parts = urlsplit((field.data or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_l("Enter a URL that starts with https:// or http://."))
    if parts.username or parts.password:
        raise ValidationError(_l("Leave the user name and password out of the URL."))
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError:
        raise ValidationError(_l("The port of this URL is not a number from 1 to 65535.")) from None


class EndpointForm(FlaskForm):
    url = StringField(
        _l("URL"),
        validators=[DataRequired(), Length(max=2000), _http_url],
        description=_l(
            "Where your CRM or server receives the POSTs, e.g. %(url)s.",
            url="https://crm.example.com/autocall/webhook",
        ),
    )
    active = BooleanField(_l("Active: send every finished attempt"), default=True)


def _secret(endpoint: WebhookEndpoint) -> str:
    return current_app.extensions["autocall.secrets"].decrypt(endpoint.secret_encrypted)


def _page(form=None, shown_secret=None, status=200):
    endpoints = db.session.scalars(scoped(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    failures_only = request.args.get("failures") == "1"
    query = scoped(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(SHOWN)
    if failures_only:
        query = query.where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.tries > 0)
    page = render_template(
        "settings/webhooks.html",
        endpoints=endpoints,
        urls={endpoint.id: endpoint.url for endpoint in endpoints},
        deliveries=db.session.scalars(query).all(),
        failures_only=failures_only,
        form=form or EndpointForm(formdata=None),
        can_add=len(endpoints) < MAX_ENDPOINTS,
        shown_secret=shown_secret,
        retries=len(current_app.extensions["autocall.config"].webhook_retries),
        editable=can_change(),
    )
    # A page that shows a secret must not be kept by the browser or a proxy.
    return page, status, {"Cache-Control": "no-store"}


@bp.get("/webhooks")
@tenant_reader
def webhooks_page():
    return _page()


@bp.post("/webhooks")
@tenant_writer
def new_webhook():
    form = EndpointForm()
    if not form.validate_on_submit():
        return _page(form=form)
    tenant_id = current_tenant_id()
    count = db.session.scalar(scoped(WebhookEndpoint).with_only_columns(func.count()))
    if count >= MAX_ENDPOINTS:
        flash(_("A company can have at most %(count)s webhooks.", count=MAX_ENDPOINTS), "error")
        return redirect(url_for("settings.webhooks_page"))
    secret = delivery.new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=form.url.data.strip(),
        active=form.active.data,
        secret_encrypted=current_app.extensions["autocall.secrets"].encrypt(secret),
    )
    db.session.add(endpoint)
    db.session.commit()
    return _page(shown_secret=(endpoint, secret))


@bp.route("/webhooks/<int:webhook_id>", methods=["GET", "POST"])
@tenant_reader
def edit_webhook(webhook_id: int):
    endpoint = get_or_404(WebhookEndpoint, webhook_id)
    form = EndpointForm(obj=endpoint)
    if form.validate_on_submit():
        endpoint.url, endpoint.active = form.url.data.strip(), form.active.data
        db.session.commit()
        flash(_("The webhook %(url)s is saved.", url=endpoint.url), "success")
        return redirect(url_for("settings.webhooks_page"))
    return render_template(
        "settings/webhook.html", form=form, endpoint=endpoint, editable=can_change()
    )


@bp.post("/webhooks/<int:webhook_id>/test")
@tenant_writer
def test_webhook(webhook_id: int):
    endpoint = get_or_404(WebhookEndpoint, webhook_id)
    test = delivery.send_test(endpoint)
    if test.state == "delivered":
        flash(
            _(
                "The test event reached %(url)s: it answered %(status)s.",
                url=endpoint.url,
                status=test.status_code,
            ),
            "success",
        )
    else:
        flash(
            _(
                "The test event did not reach %(url)s: %(error)s.",
                url=endpoint.url,
                error=test.error,
            ),
            "error",
        )
    return redirect(url_for("settings.webhooks_page"))


@bp.post("/webhooks/<int:webhook_id>/secret")
@tenant_writer
def show_webhook_secret(webhook_id: int):
    endpoint = get_or_404(WebhookEndpoint, webhook_id)
    try:
        return _page(shown_secret=(endpoint, _secret(endpoint)))
    except SecretError:  # the deployment's key changed since it was made
        flash(
            _(
                "The secret cannot be read with this server's key: delete the webhook and "
                "add it again."
            ),
            "error",
        )
        return redirect(url_for("settings.webhooks_page"))


@bp.post("/webhooks/<int:webhook_id>/delete")
@tenant_writer
def delete_webhook(webhook_id: int):
    endpoint = get_or_404(WebhookEndpoint, webhook_id)
    url = endpoint.url
    db.session.delete(endpoint)  # the database deletes its deliveries with it
    db.session.commit()
    flash(_("The webhook %(url)s is deleted.", url=url), "success")
    return redirect(url_for("settings.webhooks_page"))
