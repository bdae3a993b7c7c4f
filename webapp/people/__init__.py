"""The people of a tenant who are not operators: admins and supervisors."""

from flask import Blueprint

bp = Blueprint("people", __name__, url_prefix="/people", template_folder="templates")

from webapp.people import views  # noqa: E402,F401
