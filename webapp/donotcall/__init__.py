"""The do-not-call list: numbers, and prefixes of numbers, the tenant's engine never dials."""

from flask import Blueprint

bp = Blueprint("donotcall", __name__, url_prefix="/do-not-call", template_folder="templates")

from webapp.donotcall import views  # noqa: E402,F401
