"""The live wall for admins and supervisors: operators and their states, calls in flight,
today's counters and why the engine is not dialing, refreshed every two seconds."""

from flask import Blueprint

bp = Blueprint("live", __name__, url_prefix="/live", template_folder="templates")

from webapp.live import views  # noqa: E402,F401
