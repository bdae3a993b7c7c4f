"""The start page (sends each role where it works), the language switch, error pages."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from webapp.i18n import LANGUAGES
from webapp.models import Role
from webapp.urls import safe_next

bp = Blueprint("pages", __name__)

_HOME = {
    Role.ADMIN: "settings.sip",
    Role.SUPERVISOR: "settings.sip",
    Role.OPERATOR: "console.index",
    Role.STAFF: "staff.index",
}


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(_HOME[Role(current_user.role)]))


@bp.get("/lang/<code>")
def set_language(code: str):
    """Changing the language only changes how pages read, so a link (GET) is enough."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next(request.args.get("next")) or url_for("pages.index"))


def _error(status: int, title: str, message: str):
    return render_template("error.html", title=title, message=message), status


@bp.app_errorhandler(403)
def forbidden(error):
    return _error(403, _("Not allowed"), _("Your role does not give access to this page."))


@bp.app_errorhandler(404)
def not_found(error):
    return _error(404, _("Not found"), _("There is no such page."))


@bp.app_errorhandler(405)
def method_not_allowed(error):
    return _error(405, _("Not allowed"), _("This page cannot be used this way."))


@bp.app_errorhandler(400)
def bad_request(error):
    from flask_wtf.csrf import CSRFError

    from webapp.security import NulCharacter

    if isinstance(error, CSRFError):
        return _error(400, _("The form expired"), _("Reload the page and send the form again."))
    if isinstance(error, NulCharacter):
        message = _(
            "The text holds a NUL character, which cannot be saved or searched for: "
            "remove it and try again."
        )
        return _error(400, _("Bad request"), message)
    return _error(400, _("Bad request"), _("The request could not be understood."))
