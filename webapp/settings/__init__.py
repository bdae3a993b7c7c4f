"""Company settings: the SIP account, dial and REFER formats, and how calls are made."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings", template_folder="templates")

from webapp.settings import api_access, views  # noqa: E402,F401
