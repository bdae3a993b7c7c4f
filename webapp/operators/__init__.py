"""Operators with their extensions, and teams."""

from flask import Blueprint

bp = Blueprint("operators", __name__, url_prefix="/operators", template_folder="templates")

from webapp.operators import views  # noqa: E402,F401
