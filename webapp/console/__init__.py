"""The operator console: Go on line, the lead card that opens by itself, finishing a lead."""

from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")

from webapp.console import views  # noqa: E402,F401
