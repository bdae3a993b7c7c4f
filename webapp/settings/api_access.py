"""Settings → API access: the tokens and OAuth clients a tenant's CRM uses for the REST API.

Each gets its scopes when it is made (`read`, `leads`: a website's form needs only `leads`,
a report only `read`), and a token an optional expiry. A secret is shown once, on the page
that answers its creation (never through a redirect, which would carry it in the session
cookie); afterwards only its start is shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.extensions import db
from webapp.models import ApiClient, ApiToken
from webapp.models.api import LEADS, READ, SCOPES
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services import api_access
from webapp.settings import bp
from webapp.tenancy import current_tenant_id, get_or_404, scoped


class ClientForm(FlaskForm):
    """A new OAuth client: its name and scopes."""

    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("What uses it, e.g. the CRM or the website's callback form."),
    )
    read = BooleanField(
        READ,
        default=True,
        description=_l("Lists and reads leads, their attempts and the do-not-call list."),
    )
    leads = BooleanField(
        LEADS,
        default=True,
        description=_l(
            "Creates and cancels leads, adds numbers to the do-not-call list and "
            "takes them off. A website's form needs only this one."
        ),
    )

    def validate_leads(self, field) -> None:
        if not self.scopes:
            raise ValidationError(_l("Choose at least one scope."))

    @property
    def scopes(self) -> list[str]:
        return [scope for scope in SCOPES if self[scope].data]


#: The lifetimes a token may be given, in days; "" lives until revoked.
LIFETIMES = (7, 30, 90, 365)


class TokenForm(ClientForm):
    """A new API token: its name, scopes and lifetime."""

    expires = SelectField(
        _l("Expires"),
        choices=[SelectChoice("", _l("never: until revoked"))]
        + [SelectChoice(str(days), _l("in %(days)s days", days=days)) for days in LIFETIMES],
        default="",
    )

    @property
    def expires_at(self) -> datetime | None:
        if not self.expires.data:
            return None
        return datetime.now(UTC) + timedelta(days=int(self.expires.data))


def _page(token_form=None, client_form=None, new_token=None, new_client=None, status=200):
    tokens = db.session.scalars(
        scoped(ApiToken).where(ApiToken.client_id.is_(None)).order_by(ApiToken.id)
    ).all()
    clients = db.session.scalars(scoped(ApiClient).order_by(ApiClient.id)).all()
    page = render_template(
        "settings/api.html",
        tokens=tokens,
        clients=clients,
        token_form=token_form or TokenForm(prefix="token", formdata=None),
        client_form=client_form or ClientForm(prefix="client", formdata=None),
        new_token=new_token,
        new_client=new_client,
        now=datetime.now(UTC),
        editable=can_change(),
    )
    # A page that shows a secret must not be kept by the browser or a proxy.
    return page, status, {"Cache-Control": "no-store"}


@bp.get("/api")
@tenant_reader
def api_access_page():
    return _page()


@bp.post("/api/tokens")
@tenant_writer
def new_api_token():
    form = TokenForm(prefix="token")
    if not form.validate_on_submit():
        return _page(token_form=form)
    _token, bearer = api_access.create_token(
        current_tenant_id(), form.name.data, form.scopes, form.expires_at
    )
    return _page(new_token=bearer)


@bp.post("/api/tokens/<int:api_token_id>/revoke")
@tenant_writer
def revoke_api_token(api_token_id: int):
    token = get_or_404(ApiToken, api_token_id)
    if token.client_id is not None:  # a client's tokens go with the client
        return redirect(url_for("settings.api_access_page"))
    name = token.name
    db.session.delete(token)
    db.session.commit()
    flash(_("The token %(name)s is revoked: it no longer opens the API.", name=name), "success")
    return redirect(url_for("settings.api_access_page"))


@bp.post("/api/clients")
@tenant_writer
def new_api_client():
    form = ClientForm(prefix="client")
    if not form.validate_on_submit():
        return _page(client_form=form)
    client, secret = api_access.create_client(current_tenant_id(), form.name.data, form.scopes)
    return _page(new_client={"client_id": client.client_id, "secret": secret})


@bp.post("/api/clients/<int:api_client_id>/delete")
@tenant_writer
def delete_api_client(api_client_id: int):
    client = get_or_404(ApiClient, api_client_id)
    name = client.name
    db.session.delete(client)  # the database deletes its tokens with it
    db.session.commit()
    flash(_("The API client %(name)s is deleted, and its tokens with it.", name=name), "success")
    return redirect(url_for("settings.api_access_page"))
