"""Sign-up, sign-in, sign-out, password reset, email verification, password change."""

from flask import Blueprint

bp = Blueprint("auth", __name__, template_folder="templates")

from webapp.auth import views  # noqa: E402,F401  (registers the routes on bp)
