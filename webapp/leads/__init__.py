"""Leads: the list with search, filters and paging, and a lead's page with its attempts."""

from flask import Blueprint

bp = Blueprint("leads", __name__, url_prefix="/leads", template_folder="templates")

from webapp.leads import import_views, views  # noqa: E402,F401
