from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from webapp.extensions import db
from webapp.models import Role, User
from webapp.people import bp
from webapp.people.forms import PersonForm
from webapp.roles import can_change, tenant_reader, tenant_writer
from webapp.services.accounts import EmailTaken, new_user
from webapp.tenancy import current_tenant, get_or_404, scoped

#: Roles managed here; operators are managed with their extension on the operators page.
_ROLES = (Role.ADMIN.value, Role.SUPERVISOR.value)


@bp.get("/")
@tenant_reader
def index():
    people = db.session.scalars(
        scoped(User).where(User.role.in_(_ROLES)).order_by(User.role, User.email)
    ).all()
    return render_template("people/index.html", people=people, editable=can_change())


@bp.route("/new", methods=["GET", "POST"])
@tenant_writer
def new():
    form = PersonForm()
    if form.validate_on_submit():
        try:
            user = new_user(
                form.email.data, form.password.data, Role(form.role.data), current_tenant()
            )
        except EmailTaken:
            form.email.errors.append(_("An account with this email already exists."))
        else:
            user.must_change_password = True
            db.session.commit()
            flash(_("%(email)s can sign in now.", email=user.email), "success")
            return redirect(url_for("people.index"))
    return render_template("people/new.html", form=form)


def _set_active(user_id: int, active: bool):
    user = get_or_404(User, user_id)
    if user.role not in _ROLES:
        abort(404)
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."), "error")
        return redirect(url_for("people.index"))
    user.active = active
    db.session.commit()
    if active:
        flash(_("%(email)s is active again.", email=user.email), "success")
    else:
        flash(_("%(email)s is deactivated and signed out.", email=user.email), "success")
    return redirect(url_for("people.index"))


@bp.post("/<int:user_id>/deactivate")
@tenant_writer
def deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/activate")
@tenant_writer
def activate(user_id: int):
    return _set_active(user_id, True)
