"""The operator console. A placeholder for now: Go on line / Go off line come with the engine."""

from flask import Blueprint, render_template

from webapp.models import Role
from webapp.roles import role_required

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")


@bp.get("/")
@role_required(Role.OPERATOR)
def index():
    return render_template("console/index.html")
