"""Campaigns: the tenant's lists of leads, each run, paused or archived on its own
(docs/portal.md, "Campaigns")."""

from flask import Blueprint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns", template_folder="templates")

from webapp.campaigns import views  # noqa: E402,F401
